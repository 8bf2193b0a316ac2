"""C-MAPSS FD001 remaining-useful-life benchmark.

Train on ``train_FD001`` (RUL capped at 125 cycles, piecewise-linear target), predict at the
last cycle of each test engine, score against ``RUL_FD001`` (capped the same way): RMSE and the
PHM08 score, mean and spread over seeds. The Prognos pipeline (drop flat sensors, regime
normalisation, multi-scale rolling level/spread/slope/crossings/EWM features, deviation from
each engine's own first cycles, bagged gradient boosting on the capped target) is compared with a plain gradient-boosting baseline over rolling
means and slopes of the same sensors, trained and scored in the same run.

    python -m benchmarks.cmapss [--quick] --json PATH [--data ../shared/datasets/cmapss]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from detection.features.baseline import baseline_delta
from detection.features.pipeline import FeatureSpec, grouped_features
from detection.features.regime import regime_stats, regime_zscore
from detection.features.rolling_level import rolling_mean
from detection.features.rolling_slope import rolling_slope
from detection.prediction.rul import RULRegressor

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT / ".." / "shared" / "datasets" / "cmapss"
CAP = 125.0
N_SENSORS = 21
SENSOR_NAMES = [f"s{i}" for i in range(1, N_SENSORS + 1)]
SPEC = FeatureSpec(windows=(5, 10, 20, 30), ewm_alphas=(0.1, 0.3))
DELTA_SPEC = FeatureSpec(windows=(10,), ewm_alphas=(), crossings=False, current=False)
BASELINE_CYCLES = 20  # every test engine has at least 31 cycles
TARGET = {"FD001_rmse": 12.0, "FD001_phm08": 230.0}


@dataclass
class Split:
    unit: np.ndarray      # (n,) engine id
    cycle: np.ndarray     # (n,) 1-based cycle
    settings: np.ndarray  # (n, 3) operational settings
    sensors: np.ndarray   # (n, 21)

    @property
    def lengths(self) -> list[int]:
        # rows are grouped by unit, cycles ascending (checked on load)
        _, idx, counts = np.unique(self.unit, return_index=True, return_counts=True)
        return [int(c) for c in counts[np.argsort(idx)]]


def load_split(path: Path) -> Split:
    if not path.is_file():
        raise FileNotFoundError(f"C-MAPSS file not found: {path} (pass --data DIR)")
    raw = np.loadtxt(path)
    if raw.ndim != 2 or raw.shape[1] != 5 + N_SENSORS:
        raise ValueError(f"{path}: expected 26 whitespace-separated columns, got shape {raw.shape}")
    unit, cycle = raw[:, 0].astype(int), raw[:, 1].astype(int)
    starts = np.r_[True, unit[1:] != unit[:-1]]
    if len(np.unique(unit)) != starts.sum() or np.any(np.diff(cycle)[~starts[1:]] != 1):
        raise ValueError(f"{path}: rows must be grouped by unit with consecutive cycles")
    return Split(unit, cycle, raw[:, 2:5], raw[:, 5:])


def train_targets(split: Split) -> np.ndarray:
    last = {u: c for u, c in zip(split.unit, split.cycle)}
    return np.array([last[u] - c for u, c in zip(split.unit, split.cycle)], dtype=np.float64)


def last_rows(split: Split) -> np.ndarray:
    return np.flatnonzero(np.r_[split.unit[1:] != split.unit[:-1], True])


def rmse(pred, true) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred) - np.asarray(true)) ** 2)))


def phm08(pred, true) -> float:
    """PHM08 score: late predictions (d >= 0) cost exp(d/10) - 1, early ones exp(-d/13) - 1."""
    d = np.asarray(pred, dtype=np.float64) - np.asarray(true, dtype=np.float64)
    return float(np.sum(np.where(d < 0, np.exp(-d / 13.0) - 1.0, np.exp(d / 10.0) - 1.0)))


def informative_sensors(train: Split, max_levels: int = 3) -> np.ndarray:
    """Sensors with more than ``max_levels`` distinct values in training (flat ones dropped)."""
    return np.array([len(np.unique(train.sensors[:, j])) > max_levels for j in range(N_SENSORS)])


class SettingsRegimeNormalizer:
    """Operating-condition normalisation for C-MAPSS: cluster the three operational settings
    (altitude, Mach, throttle) into flight regimes with k-means and z-score every sensor
    against its regime's training statistics (the platform's counterpart bands a condition
    sensor instead: ``detection.prediction.conditions.RegimeNormalizer``)."""

    def __init__(self, n_regimes: int, random_state: int = 0):
        self.n_regimes = n_regimes
        self.random_state = random_state

    def fit(self, settings: np.ndarray, x: np.ndarray) -> SettingsRegimeNormalizer:
        self.kmeans_ = KMeans(self.n_regimes, n_init=10, random_state=self.random_state).fit(settings)
        self.means_, self.stds_ = regime_stats(x, self.kmeans_.labels_.astype(np.int64), self.n_regimes)
        return self

    def transform(self, settings: np.ndarray, x: np.ndarray) -> np.ndarray:
        labels = self.kmeans_.predict(settings).astype(np.int64)
        return regime_zscore(x, labels, self.means_, self.stds_)


def per_unit(split: Split, x: np.ndarray, fn) -> np.ndarray:
    out, start = [], 0
    for n in split.lengths:
        out.append(fn(x[start : start + n]))
        start += n
    return np.vstack(out)


def prognos_features(split: Split, keep: np.ndarray, norm: SettingsRegimeNormalizer) -> np.ndarray:
    """Regime z-scores -> multi-scale window features, the cycle, and the level, spread and
    slope of each sensor's deviation from the engine's own first ``BASELINE_CYCLES``."""
    z = norm.transform(split.settings, split.sensors[:, keep])
    delta = per_unit(split, z, lambda part: baseline_delta(part, BASELINE_CYCLES))
    return np.c_[grouped_features(z, split.lengths, SPEC), split.cycle,
                 grouped_features(delta, split.lengths, DELTA_SPEC)]


def baseline_features(split: Split, keep: np.ndarray, window: int = 10) -> np.ndarray:
    x = split.sensors[:, keep]
    feats = per_unit(split, x, lambda part: np.c_[rolling_mean(part, window), rolling_slope(part, window)])
    return np.c_[feats, split.cycle]


def run(data_dir: Path, seeds: list[int], quick: bool = False, n_regimes: int = 1,
        progress=None, max_iter: int | None = None) -> dict:
    t0 = time.perf_counter()
    train = load_split(data_dir / "train_FD001.txt")
    test = load_split(data_dir / "test_FD001.txt")
    true = np.minimum(np.loadtxt(data_dir / "RUL_FD001.txt"), CAP)
    last = last_rows(test)
    if len(true) != len(last):
        raise ValueError(f"RUL_FD001 has {len(true)} rows for {len(last)} test units")
    y = np.minimum(train_targets(train), CAP)
    keep = informative_sensors(train)
    norm = SettingsRegimeNormalizer(n_regimes).fit(train.settings, train.sensors[:, keep])
    Xtr, Xte = prognos_features(train, keep, norm), prognos_features(test, keep, norm)[last]
    Btr, Bte = baseline_features(train, keep), baseline_features(test, keep)[last]
    t_features = time.perf_counter() - t0

    ours = {"rmse": [], "phm08": [], "fit_s": []}
    base = {"rmse": [], "phm08": [], "fit_s": []}
    for seed in seeds:
        t = time.perf_counter()
        model = RULRegressor(cap=CAP, n_members=2 if quick else 5,
                             max_iter=max_iter or (150 if quick else 400), random_state=seed).fit(Xtr, y)
        pred = model.predict(Xte)
        ours["fit_s"].append(time.perf_counter() - t)
        ours["rmse"].append(rmse(pred, true))
        ours["phm08"].append(phm08(pred, true))
        t = time.perf_counter()
        gbm = HistGradientBoostingRegressor(max_iter=max_iter or (100 if quick else 200),
                                            random_state=seed).fit(Btr, y)
        bpred = np.clip(gbm.predict(Bte), 0, CAP)
        base["fit_s"].append(time.perf_counter() - t)
        base["rmse"].append(rmse(bpred, true))
        base["phm08"].append(phm08(bpred, true))
        if progress:
            progress(seed, ours, base)

    def summary(runs: dict) -> dict:
        return {
            "FD001_rmse": {"mean": float(np.mean(runs["rmse"])), "std": float(np.std(runs["rmse"])),
                           "runs": runs["rmse"]},
            "FD001_phm08": {"mean": float(np.mean(runs["phm08"])), "std": float(np.std(runs["phm08"])),
                            "runs": runs["phm08"]},
            "fit_s_mean": float(np.mean(runs["fit_s"])),
        }

    ours_s, base_s = summary(ours), summary(base)
    return {
        "benchmark": "cmapss",
        "dataset": "FD001",
        "quick": quick,
        "max_iter": max_iter,
        "seeds": seeds,
        "cap": CAP,
        "sensors": [n for n, k in zip(SENSOR_NAMES, keep) if k],
        "n_features": int(Xtr.shape[1]),
        "train_rows": int(Xtr.shape[0]),
        "test_units": int(len(last)),
        **{k: v for k, v in ours_s.items()},
        "baseline": {"name": "HistGradientBoostingRegressor over raw-sensor rolling mean+slope (10 cycles) and cycle", **base_s},
        "rmse_ratio_vs_baseline": ours_s["FD001_rmse"]["mean"] / base_s["FD001_rmse"]["mean"],
        "target": TARGET,
        "meets_target": ours_s["FD001_rmse"]["mean"] <= TARGET["FD001_rmse"]
        and ours_s["FD001_phm08"]["mean"] <= TARGET["FD001_phm08"],
        "runtime_s": time.perf_counter() - t0,
        "feature_s": t_features,
        "machine": f"{platform.machine()}, Python {platform.python_version()}, 2 vCPU shared",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cmapss", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1 seed, fewer trees (about a minute)")
    p.add_argument("--json", type=Path, help="write the figures to this JSON file")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="directory with the FD001 files")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default 5, 1 with --quick)")
    p.add_argument("--regimes", type=int, default=1, help="operating regimes to normalise by (FD001: 1)")
    p.add_argument("--max-iter", type=int, default=None, help="boosting iterations (override)")
    p.add_argument("--threads", type=int, default=1,
                   help="OpenMP threads for boosting (default 1; on a shared machine more threads spin)")
    args = p.parse_args(argv)
    n_seeds = args.seeds if args.seeds is not None else (1 if args.quick else 5)
    if n_seeds < 1 or args.regimes < 1 or args.threads < 1 or (args.max_iter is not None and args.max_iter < 1):
        p.error("--seeds, --regimes, --threads and --max-iter must be >= 1")

    def progress(seed, ours, base):
        print(f"seed {seed}: rmse {ours['rmse'][-1]:.2f} phm08 {ours['phm08'][-1]:.0f} "
              f"(baseline {base['rmse'][-1]:.2f} / {base['phm08'][-1]:.0f})", file=sys.stderr)

    try:
        with threadpool_limits(limits=args.threads, user_api="openmp"):
            res = run(args.data, list(range(n_seeds)), quick=args.quick, n_regimes=args.regimes,
                      progress=progress, max_iter=args.max_iter)
    except (FileNotFoundError, ValueError) as exc:
        print(f"cmapss: {exc}", file=sys.stderr)
        return 2
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2))
    r, s, b = res["FD001_rmse"], res["FD001_phm08"], res["baseline"]
    print(f"cmapss FD001: RMSE {r['mean']:.2f} ± {r['std']:.2f}, PHM08 {s['mean']:.0f} ± {s['std']:.0f} "
          f"(baseline GBM {b['FD001_rmse']['mean']:.2f} / {b['FD001_phm08']['mean']:.0f}; "
          f"ratio {res['rmse_ratio_vs_baseline']:.2f}) target {'met' if res['meets_target'] else 'MISSED'} "
          f"in {res['runtime_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
