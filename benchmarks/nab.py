"""NAB benchmark: the product's detector set over the 58 NAB series, scored as NAB scores.

    python -m benchmarks.nab [--quick] [--select] --json PATH [--data ../shared/datasets/nab] [--results DIR]

Runs, in the same process: the production path ``production`` (:class:`detection.fleet.FleetDetector`,
the detector set ``prognos detect`` runs, with ``detection.nab.detectors.NAB_CONFIG``, one
configuration for the whole corpus), the same detector set with only its z tests
(``prognosFleetZ``), the standalone ``ContextNovelty`` class (the previous entry) and NAB's
windowed-Gaussian baseline; scores them with ``detection.nab.scoring`` (three profiles,
corpus-wide threshold per profile, normalised against the null and perfect detectors) on the
whole corpus and on its two halves (even- and odd-numbered series, in the corpus's sorted
order), and writes NAB-format result CSVs (``<results>/<detector>/<category>/<detector>_<name>.csv``)
so anyone can rescore the run. JSON: ``production_standard``, ``production_low_fp``,
``production_low_fn`` and ``production_config``.

Protocol: ``NAB_CONFIG`` was chosen among ``NAB_CANDIDATES`` by the standard score on the
even-numbered series alone; ``--select`` re-runs that choice (and reports every candidate on
both halves). ``--quick`` uses every 4th series (15 series), still scored with their own windows.
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
from dataclasses import asdict

from detection.nab.detectors import (DAILY_PARAMS, FLEET_CONFIG, NAB_CANDIDATES, NAB_CHOICE, NAB_CONFIG,
                                     REFRACTORY_OF_PROBATION, context_scores, fleet_scores, production_scores,
                                     windowed_gaussian)
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


PROFILES = {"standard": "standard", "reward_low_FP_rate": "low_fp", "reward_low_FN_rate": "low_fn"}


def halves(series, scores, profiles) -> dict:
    """Scores of the whole set and of its even- and odd-numbered series (each half with its own
    best threshold, as a corpus of its own)."""
    out = {}
    for name, idx in (("all", range(len(series))), ("even", range(0, len(series), 2)),
                      ("odd", range(1, len(series), 2))):
        res = score_corpus([series[i] for i in idx], [scores[i] for i in idx], profiles)
        out[name] = {p: round(r["score"], 2) for p, r in res.items()}
    return out


def select(series, profiles) -> dict:
    """Every candidate configuration on both halves; the choice is the best standard score on
    the even-numbered series."""
    rows = {}
    for name, cfg in NAB_CANDIDATES.items():
        scores = [production_scores(s.values, s.timestamps, s.probation, cfg)
                  for s in tqdm(series, desc=f"select {name}", unit="series", file=sys.stderr)]
        rows[name] = halves(series, scores, profiles)
    best = max(rows, key=lambda k: rows[k]["even"]["standard"])
    return {"candidates": rows, "chosen_on_even": best, "in_code": NAB_CHOICE}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.nab", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="every 4th series only (~1 min)")
    ap.add_argument("--select", action="store_true", help="re-run the choice of NAB_CONFIG on the even half")
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
        "production": lambda s: production_scores(s.values, s.timestamps, s.probation),
        "prognosFleetZ": lambda s: fleet_scores(s.values, s.timestamps, s.probation),
        "contextNoveltyClass": lambda s: context_scores(s.values, s.probation, s.timestamps, DAILY_PARAMS),
        "windowedGaussian": lambda s: windowed_gaussian(s.values),
    }
    per_series = {"warmup": "probationary period",
                  "ctx_refractory": f"{REFRACTORY_OF_PROBATION} x probationary period", "refractory": 0}
    out = {"series": len(series), "rows": int(sum(len(s.values) for s in series)), "quick": args.quick,
           "production_config": asdict(NAB_CONFIG) | per_series | {"name": NAB_CHOICE},
           "protocol": "NAB_CONFIG chosen among detection.nab.detectors.NAB_CANDIDATES by the standard score on "
                       "the even-numbered series only; the odd-numbered series were not used for that choice",
           "config": {"prognosFleetZ": asdict(FLEET_CONFIG) | {"warmup": "probationary period"},
                      "contextNoveltyClass": {"detector": "ContextNovelty", **DAILY_PARAMS} | per_series},
           "detectors": {}}
    for name, fn in detectors.items():
        t0 = time.perf_counter()
        scores = [fn(s) for s in tqdm(series, desc=name, unit="series", file=sys.stderr)]
        elapsed = time.perf_counter() - t0
        res = score_corpus(series, scores, profiles)
        write_results(results_dir, name, series, scores)
        out["detectors"][name] = {p: round(r["score"], 2) for p, r in res.items()} | {
            "detail": res, "halves": halves(series, scores, profiles), "seconds": round(elapsed, 2),
            "results_dir": str(results_dir / name)}
    ours = out["detectors"]["production"]
    for p, short in PROFILES.items():
        out[p] = ours[p]
        out[f"production_{short}"] = ours[p]
    out["production_halves"] = ours["halves"]
    out["results_dir"] = ours["results_dir"]
    out["baseline"] = {p: out["detectors"]["windowedGaussian"][p] for p in PROFILES}
    if args.select:
        out["selection"] = select(series, profiles)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2, default=float))
    parts = [f"{name} {d['standard']:.1f} / {d['reward_low_FP_rate']:.1f} / {d['reward_low_FN_rate']:.1f}"
             for name, d in out["detectors"].items()]
    h = ours["halves"]
    print(f"NAB{' (quick)' if args.quick else ''} (standard / low FP / low FN): " + " | ".join(parts)
          + f" | production standard even {h['even']['standard']:.1f}, odd {h['odd']['standard']:.1f}"
          + (f" | selection on even: {out['selection']['chosen_on_even']}" if args.select else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
