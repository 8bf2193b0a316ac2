"""Detection throughput: sample-updates per second of the detector set.

    python -m benchmarks.detection [--quick] --json PATH [--devices 10000] [--sensors 16]

One step = one reading for every device (``devices x sensors`` sample-updates, one reading per
10 minutes with timestamps) through ``FleetDetector.update_rows``: sensor facts (resolution,
repeats, counters), EWMA z, streaming median/MAD z, two-sided CUSUM, per-model Mahalanobis, the
fused score, and, in the full set, context novelty with its time-of-day channel; ~2 % missing
values. Measured in the same run, on the same seeded data, after an untimed warm-up (every
detector active), on CPU time of the timing thread (the machine is shared):

- ``numba``: the Numba kernel on one thread with the simulated product models' configuration
  (``ServiceConfig().detector``: z tests, no context; the target: >= 20 M updates/s on one core),
- ``numba_full``: the same kernel with the full set (``FleetConfig()`` defaults, context on),
- ``numba_parallel``: the service configuration on every Numba thread,
- ``numpy``: the NumPy reference (plain Python per row) on ``--reference-devices`` devices,
- ``river``: river's closest streaming detector, ``anomaly.StandardAbsoluteDeviation`` with an
  exponentially weighted mean, one per (device, sensor), on a subset of devices (its rate is
  per update, so it scales directly).

Engines are stepped interleaved (each step runs every engine once) so that all see the same
load on a shared machine. Best and median step times are reported; ratios are of median rates.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numba
import numpy as np
from tqdm import tqdm

from detection.fleet import FleetConfig, FleetDetector
from detection.service import ServiceConfig

T0 = 1.7e9


def make_steps(n_steps: int, devices: int, sensors: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    level = rng.normal(50.0, 10.0, size=(devices, sensors))
    X = level + rng.normal(size=(n_steps, devices, sensors))
    X[rng.random(X.shape) < 0.02] = np.nan
    return X


def time_engines(X: np.ndarray, warm: int, engines: dict) -> dict[str, list[float]]:
    """Step every engine through the same data, interleaved step by step so that all of them
    see the same load on a shared machine. ``engines``: name -> (engine, numba threads, config,
    devices). Single-thread engines are timed on thread CPU time, parallel ones on wall time."""
    n_steps, _, sensors = X.shape
    dets = {name: FleetDetector(sensors, cfg, capacity=nd) for name, (_, _, cfg, nd) in engines.items()}
    times: dict[str, list[float]] = {name: [] for name in engines}
    for k in tqdm(range(n_steps), desc="fleet engines", unit="step", file=sys.stderr, leave=False):
        for name, (engine, threads, _, nd) in engines.items():
            numba.set_num_threads(threads)
            clock = time.thread_time if threads == 1 else time.perf_counter
            t = np.full(nd, T0 + 600.0 * k)
            t0 = clock()
            dets[name].update_rows(np.arange(nd, dtype=np.int64), X[k, :nd], t, threads=threads > 1, engine=engine)
            if k >= warm:
                times[name].append(clock() - t0)
    return times


def time_river(X: np.ndarray, warm: int, n_dev: int) -> list[float]:
    from river import anomaly, stats

    _, _, sensors = X.shape
    dets = [[anomaly.StandardAbsoluteDeviation(sub_stat=stats.EWMean(fading_factor=0.01)) for _ in range(sensors)]
            for _ in range(n_dev)]
    times = []
    for k in tqdm(range(X.shape[0]), desc="river", unit="step", file=sys.stderr, leave=False):
        rows = X[k, :n_dev].tolist()
        t0 = time.thread_time()
        for d in range(n_dev):
            row, ds = rows[d], dets[d]
            for j in range(sensors):
                v = row[j]
                if v == v:
                    ds[j].score_one(None, v)
                    ds[j].learn_one(None, v)
        if k >= warm:
            times.append(time.thread_time() - t0)
    return times


def summarise(times: list[float], updates_per_step: int) -> dict:
    med, best = statistics.median(times), min(times)
    return {"updates_per_s": updates_per_step / med, "best_updates_per_s": updates_per_step / best,
            "median_step_s": med, "best_step_s": best, "steps": len(times)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.detection", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer timed steps")
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--sensors", type=int, default=16)
    ap.add_argument("--river-devices", type=int, default=200)
    ap.add_argument("--reference-devices", type=int, default=200)
    args = ap.parse_args(argv)
    if args.devices < 1 or args.sensors < 1 or args.river_devices < 1:
        ap.error("--devices, --sensors and --river-devices must be >= 1")

    warm = 25
    timed = 10 if args.quick else 40
    service = replace(ServiceConfig().detector, warmup=20)
    full = FleetConfig(warmup=20)
    X = make_steps(warm + timed, args.devices, args.sensors)
    per_step = args.devices * args.sensors
    n_ref = min(args.reference_devices, args.devices)

    n_threads = numba.get_num_threads()
    FleetDetector(args.sensors, full, capacity=2).update_rows(np.array([0, 1]), X[0, :2])   # compile outside timing
    times = time_engines(X, warm, {"numba_1": ("numba", 1, service, args.devices),
                                   "numba_full": ("numba", 1, full, args.devices),
                                   "numba_n": ("numba", n_threads, service, args.devices),
                                   "numpy": ("numpy", 1, service, n_ref)})
    numba.set_num_threads(n_threads)
    numba_1 = summarise(times["numba_1"], per_step)
    numba_full = summarise(times["numba_full"], per_step)
    numba_n = summarise(times["numba_n"], per_step)
    numpy_ = summarise(times["numpy"], n_ref * args.sensors)
    n_river = min(args.river_devices, args.devices)
    Xr = X[: warm + (3 if args.quick else 8)]
    river = summarise(time_river(Xr, warm, n_river), n_river * args.sensors)

    out = {
        "devices": args.devices, "sensors": args.sensors, "timed_steps": timed, "quick": args.quick,
        "load_average_1m_at_end": os.getloadavg()[0],
        "machine": f"{platform.machine()} {numba.config.NUMBA_NUM_THREADS} Numba threads available, "
                   f"Python {platform.python_version()}, numba {numba.__version__}, numpy {np.__version__}",
        "numba_updates_per_s": numba_1["updates_per_s"],
        "numba_full_set_updates_per_s": numba_full["updates_per_s"],
        "numba_parallel_updates_per_s": numba_n["updates_per_s"],
        "numpy_updates_per_s": numpy_["updates_per_s"],
        "river_updates_per_s": river["updates_per_s"],
        "ratio_numba_vs_numpy": numba_1["updates_per_s"] / numpy_["updates_per_s"],
        "ratio_numba_vs_river": numba_1["updates_per_s"] / river["updates_per_s"],
        "ratio_parallel_vs_numba": numba_n["updates_per_s"] / numba_1["updates_per_s"],
        "detail": {"numba_1_thread": numba_1, "numba_full_set_1_thread": numba_full,
                   f"numba_{n_threads}_threads": numba_n, "numpy": numpy_ | {"devices": n_ref},
                   "river": river | {"devices": n_river, "detector": "StandardAbsoluteDeviation(EWMean(0.01))"}},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2))
    print(f"detection {args.devices}x{args.sensors}: numba {out['numba_updates_per_s'] / 1e6:.1f} M/s "
          f"(full set with context {out['numba_full_set_updates_per_s'] / 1e6:.1f} M/s) "
          f"(best {numba_1['best_updates_per_s'] / 1e6:.1f}), {n_threads} threads "
          f"{out['numba_parallel_updates_per_s'] / 1e6:.1f} M/s, numpy {out['numpy_updates_per_s'] / 1e6:.2f} M/s, "
          f"river {out['river_updates_per_s'] / 1e6:.3f} M/s | x{out['ratio_numba_vs_numpy']:.1f} numpy, "
          f"x{out['ratio_numba_vs_river']:.0f} river")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
