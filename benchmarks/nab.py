"""NAB benchmark: our streaming detectors over the 58 NAB series, scored as NAB scores.

    python -m benchmarks.nab [--quick] --json PATH [--data ../shared/datasets/nab] [--results DIR]

Runs, in the same process, our entry ``prognos`` (``ContextNovelty`` with its time-of-day
channel, ``detection.nab.detectors.DAILY_PARAMS``), the previous entry ``prognosContext``
(``ContextNovelty`` without it, ``CONTEXT_PARAMS``), the production ``FleetDetector``
(``FLEET_CONFIG``) and NAB's windowed-Gaussian baseline, one parameter set each for the whole
corpus; scores them with ``detection.nab.scoring`` (three profiles, corpus-wide threshold per
profile, normalised against the null and perfect detectors) and writes NAB-format result CSVs
(``<results>/<detector>/<category>/<detector>_<name>.csv``) so anyone can rescore the run.
``--quick`` uses every 4th series (15 series), still scored with their own windows.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from detection.nab.corpus import DEFAULT_ROOT, load_corpus, load_profiles
from detection.nab.detectors import (CONTEXT_PARAMS, DAILY_PARAMS, FLEET_CONFIG, REFRACTORY_OF_PROBATION,
                                     context_scores, fleet_scores, windowed_gaussian)
from detection.nab.scoring import label_rows, score_corpus

ROOT = Path(__file__).resolve().parent.parent


def write_results(out_dir: Path, detector: str, series, scores) -> None:
    for ser, sc in zip(series, scores):
        lab = label_rows(ser.timestamps, ser.windows, ser.probation)
        path = out_dir / detector / ser.category / f"{detector}_{ser.name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["timestamp", "value", "anomaly_score", "label"])
            ts = np.datetime_as_string(ser.timestamps, unit="s")
            for t, v, s, lbl in zip(ts, ser.values.tolist(), sc.tolist(), lab.label.tolist()):
                w.writerow([t.replace("T", " "), repr(v), f"{s:.10g}", lbl])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.nab", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="every 4th series only (~1 min)")
    ap.add_argument("--json", type=Path, required=True, help="write the figures here")
    ap.add_argument("--data", type=Path, default=DEFAULT_ROOT, help="NAB corpus root (default %(default)s)")
    ap.add_argument("--results", type=Path, default=None,
                    help="result CSV directory (default: next to --json, 'nab_results')")
    args = ap.parse_args(argv)

    try:
        series = load_corpus(args.data)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.quick:
        series = series[::4]
    profiles = load_profiles(args.data)
    results_dir = args.results or args.json.resolve().parent / "nab_results"

    detectors = {
        "prognos": lambda s: context_scores(s.values, s.probation, s.timestamps, DAILY_PARAMS),
        "prognosContext": lambda s: context_scores(s.values, s.probation),
        "prognosFleetZ": lambda s: fleet_scores(s.values, s.timestamps, s.probation),
        "windowedGaussian": lambda s: windowed_gaussian(s.values),
    }
    out = {"series": len(series), "rows": int(sum(len(s.values) for s in series)), "quick": args.quick,
           "config": {"prognos": {"detector": "ContextNovelty", **DAILY_PARAMS, "warmup": "probationary period",
                                  "refractory": f"{REFRACTORY_OF_PROBATION} x probationary period"},
                      "prognosContext": {"detector": "ContextNovelty", **CONTEXT_PARAMS,
                                         "warmup": "probationary period",
                                         "refractory": f"{REFRACTORY_OF_PROBATION} x probationary period"},
                      "prognosFleetZ": FLEET_CONFIG.__dict__ | {"warmup": "probationary period"}},
           "detectors": {}}
    for name, fn in detectors.items():
        t0 = time.perf_counter()
        scores = [fn(s) for s in tqdm(series, desc=name, unit="series", file=sys.stderr)]
        elapsed = time.perf_counter() - t0
        res = score_corpus(series, scores, profiles)
        write_results(results_dir, name, series, scores)
        out["detectors"][name] = {p: round(r["score"], 2) for p, r in res.items()} | {
            "detail": res, "seconds": round(elapsed, 2), "results_dir": str(results_dir / name)}
    ours = out["detectors"]["prognos"]
    for p in ("standard", "reward_low_FP_rate", "reward_low_FN_rate"):
        out[p] = ours[p]
    out["results_dir"] = ours["results_dir"]
    out["baseline"] = {p: out["detectors"]["windowedGaussian"][p]
                       for p in ("standard", "reward_low_FP_rate", "reward_low_FN_rate")}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2, default=float))
    parts = [f"{name} {d['standard']:.1f} / {d['reward_low_FP_rate']:.1f} / {d['reward_low_FN_rate']:.1f}"
             for name, d in out["detectors"].items()]
    print(f"NAB{' (quick)' if args.quick else ''} (standard / low FP / low FN): " + " | ".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
