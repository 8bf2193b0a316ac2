"""Load the NAB corpus: series, anomaly windows and application profiles.

Data live outside the project (``../shared/datasets/nab`` by default); nothing is copied.

>>> probation_length(4032), probation_length(22695)
(604, 750)
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "nab"
PROBATION_PERCENT = 0.15


@dataclass(frozen=True)
class Profile:
    name: str
    a_tp: float
    a_fp: float
    a_fn: float


@dataclass
class Series:
    key: str                    # "realKnownCause/nyc_taxi.csv"
    timestamps: np.ndarray      # datetime64[s]
    values: np.ndarray          # float64
    windows: list[tuple[np.datetime64, np.datetime64]]

    @property
    def category(self) -> str:
        return self.key.split("/")[0]

    @property
    def name(self) -> str:
        return self.key.split("/")[1].removesuffix(".csv")

    @property
    def probation(self) -> int:
        return probation_length(len(self.values))


def probation_length(n: int) -> int:
    """NAB: ``min(floor(0.15 n), 0.15 * 5000)`` rows at the start of a series count for nothing."""
    return int(min(math.floor(PROBATION_PERCENT * n), PROBATION_PERCENT * 5000))


def _parse_time(s: str) -> np.datetime64:
    # window limits carry fractional seconds ("2014-04-10 07:15:00.000000"), data do not
    return np.datetime64(s.strip().replace(" ", "T"), "us").astype("datetime64[s]")


def load_profiles(root: Path | str = DEFAULT_ROOT) -> list[Profile]:
    data = json.loads((Path(root) / "config" / "profiles.json").read_text())
    return [Profile(name, p["CostMatrix"]["tpWeight"], p["CostMatrix"]["fpWeight"], p["CostMatrix"]["fnWeight"])
            for name, p in data.items()]


def load_series(root: Path | str, key: str, windows: list) -> Series:
    path = Path(root) / "data" / key
    ts, vals = [], []
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        if header[:2] != ["timestamp", "value"]:
            raise ValueError(f"{path}: expected columns timestamp,value, got {header}")
        for row in reader:
            ts.append(row[0].replace(" ", "T"))
            vals.append(float(row[1]))
    timestamps = np.array(ts, dtype="datetime64[s]")
    # Rows are the stream, in file order, as NAB feeds them: a few series repeat timestamps
    # (DST) and one steps back once; nothing is sorted or dropped.
    return Series(key, timestamps, np.array(vals), [(_parse_time(a), _parse_time(b)) for a, b in windows])


def load_corpus(root: Path | str = DEFAULT_ROOT, limit: int | None = None) -> list[Series]:
    """All series listed in ``labels/combined_windows.json``, in sorted key order."""
    root = Path(root)
    if not (root / "labels" / "combined_windows.json").is_file():
        raise FileNotFoundError(f"NAB corpus not found under {root} (expected labels/combined_windows.json)")
    windows = json.loads((root / "labels" / "combined_windows.json").read_text())
    keys = sorted(windows)[:limit] if limit else sorted(windows)
    return [load_series(root, k, windows[k]) for k in keys]
