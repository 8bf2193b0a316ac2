"""C-MAPSS FD001-FD004 remaining-useful-life benchmark.

For each subset: train on ``train_FD00N`` (RUL capped at 125 cycles, piecewise-linear target),
predict at the last cycle of each test engine, score against ``RUL_FD00N`` (capped the same
way): RMSE and the PHM08 score, mean and spread over seeds. The Prognos pipeline is the
platform's prediction code: operating regimes learned from the training settings by the
platform's ``RegimeNormalizer`` (k-means on the three operational settings, the number of
regimes chosen by the variance they explain: 1 for FD001/FD003, 6 for FD002/FD004), every
sensor as a z-score within its regime, sensors flat within their regime dropped, multi-scale
rolling level/spread/slope/crossings/EWM features, deviation from each engine's own first
cycles, bagged gradient boosting on the capped target. A plain gradient-boosting baseline over
rolling means and slopes of the raw sensors is trained and scored in the same run.

    python -m benchmarks.cmapss [--quick] --json PATH [--data ../shared/datasets/cmapss] [--subsets FD001,FD002]
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
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from detection.features.baseline import baseline_delta
from detection.features.pipeline import FeatureSpec, grouped_features
from detection.features.rolling_level import rolling_mean
from detection.features.rolling_slope import rolling_slope
from detection.prediction.conditions import RegimeNormalizer
from detection.prediction.rul import RULRegressor

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT / ".." / "shared" / "datasets" / "cmapss"
CAP = 125.0
N_SENSORS = 21
SENSOR_NAMES = [f"s{i}" for i in range(1, N_SENSORS + 1)]
SPEC = FeatureSpec(windows=(5, 10, 20, 30), ewm_alphas=(0.1, 0.3))
DELTA_SPEC = FeatureSpec(windows=(10,), ewm_alphas=(), crossings=False, current=False)
BASELINE_CYCLES = 20  # every test engine has at least 31 cycles
SUBSETS = ("FD001", "FD002", "FD003", "FD004")
#: Targets: DAST (2022) RMSE per subset; STAR (2024) is the aim (README's published table).
TARGET_RMSE = {"FD001": 11.43, "FD002": 15.25, "FD003": 11.32, "FD004": 18.23}
STAR_RMSE = {"FD001": 10.61, "FD002": 13.47, "FD003": 10.71, "FD004": 15.87}


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


def informative(z: np.ndarray, max_levels: int = 3) -> np.ndarray:
    """Columns with more than ``max_levels`` distinct values (to 6 decimals) in training: flat
    sensors, and sensors flat within every operating regime, are dropped."""
    return np.array([len(np.unique(np.round(z[:, j], 6))) > max_levels for j in range(z.shape[1])])


def fit_regimes(train: Split, random_state: int = 0) -> RegimeNormalizer:
    """The platform's regime normaliser on the three operational settings (condition sensors),
    clustered, their number learned from the training settings (``n_regimes="auto"``)."""
    return RegimeNormalizer([0, 1, 2], n_regimes="auto", method="clusters",
                            random_state=random_state).fit(np.c_[train.settings, train.sensors])


def per_unit(split: Split, x: np.ndarray, fn) -> np.ndarray:
    out, start = [], 0
    for n in split.lengths:
        out.append(fn(x[start : start + n]))
        start += n
    return np.vstack(out)


def prognos_features(split: Split, keep: np.ndarray, norm: RegimeNormalizer) -> np.ndarray:
    """Regime z-scores -> multi-scale window features, the cycle, and the level, spread and
    slope of each sensor's deviation from the engine's own first ``BASELINE_CYCLES``."""
    z = norm.transform(np.c_[split.settings, split.sensors])[:, keep]
    delta = per_unit(split, z, lambda part: baseline_delta(part, BASELINE_CYCLES))
    return np.c_[grouped_features(z, split.lengths, SPEC), split.cycle,
                 grouped_features(delta, split.lengths, DELTA_SPEC)]


def baseline_features(split: Split, window: int = 10) -> np.ndarray:
    """Baseline: raw sensors that vary at all, their rolling mean and slope, and the cycle."""
    x = split.sensors[:, np.ptp(split.sensors, axis=0) > 0]
    feats = per_unit(split, x, lambda part: np.c_[rolling_mean(part, window), rolling_slope(part, window)])
    return np.c_[feats, split.cycle]


def available_subsets(data_dir: Path, wanted: list[str]) -> list[str]:
    have = [s for s in wanted if (data_dir / f"train_{s}.txt").is_file()]
    if not have:
        raise FileNotFoundError(f"C-MAPSS files not found in {data_dir}: none of "
                                f"{', '.join(f'train_{s}.txt' for s in wanted)} (pass --data DIR)")
    return have


def _stats(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "runs": [float(v) for v in values]}


def run_subset(data_dir: Path, name: str, seeds: list[int], quick: bool = False,
               progress=None, max_iter: int | None = None) -> dict:
    t0 = time.perf_counter()
    train = load_split(data_dir / f"train_{name}.txt")
    test = load_split(data_dir / f"test_{name}.txt")
    true = np.minimum(np.loadtxt(data_dir / f"RUL_{name}.txt", ndmin=1), CAP)
    last = last_rows(test)
    if len(true) != len(last):
        raise ValueError(f"RUL_{name} has {len(true)} rows for {len(last)} test units")
    y = np.minimum(train_targets(train), CAP)
    norm = fit_regimes(train)
    keep = informative(norm.transform(np.c_[train.settings, train.sensors]))
    Xtr, Xte = prognos_features(train, keep, norm), prognos_features(test, keep, norm)[last]
    Btr, Bte = baseline_features(train), baseline_features(test)[last]
    t_features = time.perf_counter() - t0

    ours = {"rmse": [], "phm08": [], "fit_s": []}
    base = {"rmse": [], "phm08": [], "fit_s": []}
    for seed in seeds:
        t = time.perf_counter()
        model = RULRegressor(cap=CAP, n_members=2, max_iter=max_iter or (150 if quick else 200),
                             random_state=seed).fit(Xtr, y)
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
            progress(name, seed, ours, base)
    sensors = [n for n, k in zip(SENSOR_NAMES, keep) if k]
    return {
        "ours": {f"{name}_rmse": _stats(ours["rmse"]), f"{name}_phm08": _stats(ours["phm08"])},
        "baseline": {f"{name}_rmse": _stats(base["rmse"]), f"{name}_phm08": _stats(base["phm08"])},
        "detail": {"regimes": norm.describe(["setting1", "setting2", "setting3"] + SENSOR_NAMES),
                   "sensors": sensors, "n_features": int(Xtr.shape[1]), "train_rows": int(Xtr.shape[0]),
                   "test_units": int(len(last)), "feature_s": t_features,
                   "fit_s_mean": float(np.mean(ours["fit_s"])),
                   "baseline_fit_s_mean": float(np.mean(base["fit_s"])),
                   "rmse_ratio_vs_baseline": float(np.mean(ours["rmse"]) / np.mean(base["rmse"])),
                   "runtime_s": time.perf_counter() - t0},
    }


def run(data_dir: Path, seeds: list[int], quick: bool = False, subsets: list[str] | None = None,
        progress=None, max_iter: int | None = None) -> dict:
    t0 = time.perf_counter()
    names = available_subsets(data_dir, subsets or list(SUBSETS))
    res: dict = {"benchmark": "cmapss", "subsets": names, "quick": quick, "max_iter": max_iter,
                 "seeds": seeds, "cap": CAP}
    base: dict = {"name": "HistGradientBoostingRegressor over raw-sensor rolling mean+slope "
                          "(10 cycles) and cycle, no regime normalisation"}
    detail: dict = {}
    for name in names:
        out = run_subset(data_dir, name, seeds, quick, progress, max_iter)
        res.update(out["ours"])
        base.update(out["baseline"])
        detail[name] = out["detail"]
    met = {}
    for name in names:
        goal = TARGET_RMSE[name]
        met[name] = res[f"{name}_rmse"]["mean"] <= goal
    ratios = [d["rmse_ratio_vs_baseline"] for d in detail.values()]
    return res | {
        "baseline": base,
        "detail": detail,
        "sensors": sorted({s for d in detail.values() for s in d["sensors"]}, key=SENSOR_NAMES.index),
        "test_units": int(sum(d["test_units"] for d in detail.values())),
        "rmse_ratio_vs_baseline": float(np.mean(ratios)),
        "target_rmse": {n: TARGET_RMSE[n] for n in names},
        "star_rmse": {n: STAR_RMSE[n] for n in names},
        "meets_target": met,
        "runtime_s": time.perf_counter() - t0,
        "machine": f"{platform.machine()}, Python {platform.python_version()}, 2 vCPU shared",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cmapss", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1 seed, fewer trees")
    p.add_argument("--json", type=Path, help="write the figures to this JSON file")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="directory with the FD00N files")
    p.add_argument("--subsets", default=",".join(SUBSETS),
                   help="comma-separated subsets (default: all four; those without files are skipped)")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default 5, 1 with --quick)")
    p.add_argument("--max-iter", type=int, default=None, help="boosting iterations (override)")
    p.add_argument("--threads", type=int, default=1,
                   help="OpenMP threads for boosting (default 1; on a shared machine more threads spin)")
    args = p.parse_args(argv)
    n_seeds = args.seeds if args.seeds is not None else (1 if args.quick else 5)
    subsets = [x.strip().upper() for x in args.subsets.split(",") if x.strip()]
    if n_seeds < 1 or args.threads < 1 or (args.max_iter is not None and args.max_iter < 1):
        p.error("--seeds, --threads and --max-iter must be >= 1")
    if not subsets or any(x not in SUBSETS for x in subsets):
        p.error(f"--subsets must name some of {', '.join(SUBSETS)}")

    def progress(name, seed, ours, base):
        print(f"{name} seed {seed}: rmse {ours['rmse'][-1]:.2f} phm08 {ours['phm08'][-1]:.0f} "
              f"(baseline {base['rmse'][-1]:.2f} / {base['phm08'][-1]:.0f}) fit {ours['fit_s'][-1]:.0f} s",
              file=sys.stderr, flush=True)

    try:
        with threadpool_limits(limits=args.threads, user_api="openmp"):
            res = run(args.data, list(range(n_seeds)), quick=args.quick, subsets=subsets,
                      progress=progress, max_iter=args.max_iter)
    except (FileNotFoundError, ValueError) as exc:
        print(f"cmapss: {exc}", file=sys.stderr)
        return 2
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2))
    parts = []
    for name in res["subsets"]:
        r, s = res[f"{name}_rmse"], res[f"{name}_phm08"]
        b = res["baseline"][f"{name}_rmse"]["mean"]
        parts.append(f"{name} RMSE {r['mean']:.2f} ± {r['std']:.2f} (DAST {TARGET_RMSE[name]}: "
                     f"{'met' if res['meets_target'][name] else 'MISSED'}; baseline {b:.2f}), PHM08 {s['mean']:.0f}")
    print("cmapss: " + "; ".join(parts) + f" in {res['runtime_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
