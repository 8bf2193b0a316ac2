"""Predicted repair time and its conformal intervals, on the simulator's repairs.

    python -m benchmarks.mttr [--quick] --json PATH [--seed S] [--assets N] [--days D]

Protocol:

- A fleet (``--assets``, ``--days``, seed ``--seed``, onset hazards x ``--hazard-scale`` so a
  short run has enough repairs, no sensor faults: they do not touch repairs) runs in-process at
  ``--step-h`` resolution (repair durations are drawn exactly whatever the step).  A planner
  stand-in sends a technician for predictive maintenance to ``--pm-rate`` of the assets a day
  (random asset, predictable mode and time), so both corrective and predictive repairs occur.
  The simulator draws each repair from the product model and mode, the site, the technician's
  skill, the hour the work starts and whether parts must be waited for.
- The fleet is registered in a fresh database (``World``, no broker) and its repairs, downtime
  and device events are written exactly as ``simulator.backfill`` writes them: the
  technician's record (technician, skill level, parts on hand, region), never the factors the
  simulator drew.
- At the split time (``--train-share`` of the period) the model is fitted by
  ``detection.mttr.store.fit_from_db``, the path ``prognos train`` and the detection service
  run (same SQL, same censoring cut, default settings: nothing is tuned here).  The baseline
  is the previous product's estimator, the mean per (model, mode) shrunk toward the manual's
  MTTR with the weight of 3 repairs, fitted on every repair finished by the split.
- Held out: the corrective and predictive repairs that started after the split, and at least
  the fit's censoring window (the 99th percentile of repair durations) before the end, so the
  long ones are not missing.  ``mae_h``, coverage and width: features as a planner scheduling the visit knows
  them (technician's skill, parts on hand, start time); ``unplanned``: as detection knows them
  when it opens an order (none of those; the model averages over them).  ``per_mode``: the same
  per product model and failure mode.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import psycopg
from tqdm import tqdm

from benchmarks.common import parser, write
from detection.mttr import CONTEXT
from detection.mttr.history import nominal, select_repairs
from detection.mttr.store import fit_from_db
from ops.world import World
from prognos.logs import setup_logging
from simulator.backfill import _record_events
from simulator.fleet import Fleet, FleetSpec
from simulator.register import register_fleet

HOUR = 3600.0


class ShrunkMean:
    """The previous product's MTTR: mean repair time per (model, mode) shrunk toward the
    manual's figure with the weight of ``prior_weight`` repairs (the baseline)."""

    def __init__(self, prior_weight: float = 3.0):
        self.prior_weight = prior_weight

    def fit(self, repairs: pd.DataFrame, priors: dict) -> "ShrunkMean":
        sums, counts = defaultdict(float), defaultdict(int)
        for m, f, h in zip(repairs["model_id"], repairs["mode"], repairs["duration_h"]):
            sums[(m, f)] += float(h)
            counts[(m, f)] += 1
        self.mttr_ = {}
        for key in set(priors) | set(counts):
            k = self.prior_weight if key in priors else 0.0
            self.mttr_[key] = (sums[key] + k * priors.get(key, 0.0)) / (counts[key] + k)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.array([self.mttr_.get((m, f), np.nan) for m, f in zip(X["model_id"], X["mode"])])


def simulate(fleet: Fleet, days: float, step_h: float, pm_rate: float, seed: int) -> list[dict]:
    """Run the fleet for ``days`` with the planner stand-in; the ground-truth events."""
    rng = np.random.default_rng([seed, 31])
    n_steps = int(round(days * 24 / step_h))
    per_step = pm_rate * len(fleet.assets) * step_h / 24.0
    for _ in tqdm(range(n_steps), desc="simulating", unit="step", leave=False):
        clock = fleet.clock
        for _ in range(rng.poisson(per_step)):
            a = fleet.assets[int(rng.integers(len(fleet.assets)))]
            g = fleet.groups[a.model_id]
            modes = [m for m, p in zip(g.modes, g.predictable) if p]
            at = clock + timedelta(hours=float(rng.uniform(0, step_h)))
            try:
                fleet.apply_maintenance(a.asset_id, modes[int(rng.integers(len(modes)))], at=at)
            except ValueError:
                pass                                  # down at the time: its repair comes first
        fleet.step(None, 1, step_h * HOUR)
    return sorted(fleet.ground_truth.events, key=lambda e: e["t"])


def _scores(y, median, lo80, hi80, lo90, hi90) -> dict:
    return {"n": int(len(y)), "mae_h": round(float(np.mean(np.abs(median - y))), 3),
            "coverage_80": round(float(np.mean((y >= lo80) & (y <= hi80))), 4),
            "coverage_90": round(float(np.mean((y >= lo90) & (y <= hi90))), 4),
            "width_80_h": round(float(np.mean(hi80 - lo80)), 3),
            "width_90_h": round(float(np.mean(hi90 - lo90)), 3)}


def evaluate(model, baseline: ShrunkMean, test: pd.DataFrame, rows: pd.DataFrame) -> tuple[dict, np.ndarray]:
    y = test["duration_h"].to_numpy(float)
    q = model.quantiles(rows, [0.5, 0.1, 0.9, 0.05, 0.95])
    out = _scores(y, *q.T)
    out["baseline_mae_h"] = round(float(np.nanmean(np.abs(baseline.predict(test) - y))), 3)
    return out, q


def main(argv=None) -> int:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--assets", type=int, help="fleet size (default 2000; quick 500)")
    p.add_argument("--days", type=float, help="simulated days (default 365; quick 150)")
    p.add_argument("--hazard-scale", type=float, default=4.0)
    p.add_argument("--pm-rate", type=float, default=0.01, help="predictive visits per asset-day")
    p.add_argument("--step-h", type=float, default=6.0)
    p.add_argument("--train-share", type=float, default=0.6)
    args = p.parse_args(argv)
    n_assets = args.assets or (500 if args.quick else 2000)
    days = args.days or (150.0 if args.quick else 365.0)
    if n_assets < 1 or days <= 0 or not 0 < args.train_share < 1 or args.step_h <= 0:
        p.error("--assets, --days, --step-h must be positive and --train-share in (0, 1)")
    setup_logging("WARNING")
    t0 = time.perf_counter()
    start = datetime(2026, 1, 5, tzinfo=timezone.utc)
    fleet = Fleet(FleetSpec(n_assets=n_assets, seed=args.seed, start=start, id_prefix="mt",
                            hazard_scale=args.hazard_scale, sensor_faults=False))
    events = simulate(fleet, days, args.step_h, args.pm_rate, args.seed)
    t_sim = time.perf_counter() - t0
    end = fleet.clock
    split = start + timedelta(days=days * args.train_share)
    with World(broker=False) as world:
        s = world.settings
        register_fleet(s, fleet, provision_devices=False)
        with psycopg.connect(s.dsn) as conn:
            with conn.cursor() as cur:
                _record_events(cur, fleet, [e for e in events if e["event"] != "inventory"])
            conn.commit()
            t1 = time.perf_counter()
            model = fit_from_db(conn, as_of=split)
            t_fit = time.perf_counter() - t1
            priors = nominal(conn)
            seen = select_repairs(conn, None, split, split)
            baseline = ShrunkMean().fit(seen, priors)
            # held out: started after the split and early enough to have finished by the end
            # (the censoring cut of the fit, so long repairs are not missing from the test)
            test = select_repairs(conn, split, end - timedelta(hours=model.summary_["window_h"]), end)
    test = test[test["kind"] != "preventive"].reset_index(drop=True)
    if len(test) < 50:
        raise SystemExit(f"benchmarks.mttr: only {len(test)} held-out repairs; run more --assets or --days")
    t2 = time.perf_counter()
    planned, q = evaluate(model, baseline, test, test)
    unplanned, _ = evaluate(model, baseline, test, test.drop(columns=["skill_level", "parts_on_hand", "start"]))
    t_pred = time.perf_counter() - t2
    y = test["duration_h"].to_numpy(float)
    keys = (test["model_id"] + "|" + test["mode"]).to_numpy()
    b = baseline.predict(test)
    routes = model.routes(test)
    per_mode = {}
    for k in sorted(set(keys)):
        sel = keys == k
        per_mode[k] = {**_scores(y[sel], *q[sel].T),
                       "baseline_mae_h": round(float(np.nanmean(np.abs(b[sel] - y[sel]))), 3),
                       "route": str(routes[sel][0]),
                       "train_repairs": model.summary_["groups"].get(k, {}).get("repairs", 0)}
    per_kind = {}
    for k in sorted(set(test["kind"])):
        sel = (test["kind"] == k).to_numpy()
        per_kind[k] = _scores(y[sel], *q[sel].T)
    figures = {
        "mae_h": planned["mae_h"], "baseline_mae_h": planned["baseline_mae_h"],
        "coverage_80": planned["coverage_80"], "coverage_90": planned["coverage_90"],
        "width_80_h": planned["width_80_h"], "width_90_h": planned["width_90_h"],
        "n_test": planned["n"], "n_train": model.summary_["repairs"],
        "unplanned": unplanned, "per_kind": per_kind, "per_mode": per_mode,
        "calibration_bins": model.bin_n_,
        "fit": {k: v for k, v in model.summary_.items() if k != "groups"},
        "protocol": {"seed": args.seed, "assets": n_assets, "days": days, "hazard_scale": args.hazard_scale,
                     "pm_rate": args.pm_rate, "step_h": args.step_h, "train_share": args.train_share,
                     "split": split.isoformat(), "end": end.isoformat(), "quick": args.quick},
        "seconds": {"simulate": round(t_sim, 1), "fit": round(t_fit, 2), "predict": round(t_pred, 2),
                    "total": round(time.perf_counter() - t0, 1)},
    }
    write(args.json, figures,
          f"mttr: MAE {planned['mae_h']:.2f} h (shrunk mean {planned['baseline_mae_h']:.2f} h), coverage "
          f"80% {planned['coverage_80']:.3f} / 90% {planned['coverage_90']:.3f}, mean 90% width "
          f"{planned['width_90_h']:.1f} h on {planned['n']} held-out repairs ({model.summary_['repairs']} "
          f"fitted); unplanned: MAE {unplanned['mae_h']:.2f} h, 90% {unplanned['coverage_90']:.3f}, "
          f"width {unplanned['width_90_h']:.1f} h")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
