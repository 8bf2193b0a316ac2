"""Predictive lead time on simulated fleets, out of sample: the platform learns on one fleet and
is scored on others, whose seeds no default was tuned on.

Learning (``--train-seed``): a fleet (``--assets``) is registered in a fresh database and its
whole period (``--history-days`` + ``--days``) backfilled the way ingest writes it, with the
failures, repairs and downtime the platform records; ``prognos train --signatures-only`` (the
same code, :mod:`detection.train_cli`) learns the failure-mode signatures from that history;
``prognos train --detection-only`` learns them and the alarm levels (:mod:`detection.levels`:
that history replayed through the detection service's code against the failures that followed).

Scoring (``--seed S``: fleets S, S+1, S+2, each in a fresh database that receives the learned
signatures as a deployment would): ``--history-days`` of telemetry are backfilled as history
(the condition normalisers are fitted on it), then ``--days`` more are written the way ingest
writes them (rows + outbox batches) and the online detection service (``detection.service``,
the code ``prognos detect`` runs) processes them. Its predictive orders are scored against the
simulator's ground truth (``simulator.scoring.score_orders``), and so are the orders of a
fixed-threshold baseline (nameplate / ISO 10816 alarm levels) on the same readings in the same
run, with its alarm levels swept from tight to loose: the platform's recall is compared with the
baseline's best recall at a precision at least the platform's. Each scoring seed is reported on
its own (``per_seed``) with the mean; the top-level ``recall_24h`` and ``precision`` are the
worst seed's. Each scoring fleet is processed twice on the same readings, by a service with the
learned alarm levels (the figures) and by one with the hand-tuned ``ServiceConfig`` defaults
(``frozen``, before learning the levels): each seed reports both. MQTT is not in this loop: it changes when rows arrive, not what is predicted from
them (ingest has its own benchmark).

The simulated period ends at ``--end`` (default :data:`DEFAULT_END`, fixed): a fleet's readings
depend on the calendar (seasons, days of the week), so a seed names the same fleet only with
the same end. Runs before this option ended 10 minutes before their wall-clock start, so a
seed's figures from different days came from different realisations of its fleet.

    python -m benchmarks.lead_time [--quick] [--seed 101] [--train-seed 1] [--end 2026-12-01T00:00Z] --json PATH
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import psycopg

from benchmarks.common import parser, write
from detection import levels as alarm_levels
from detection import signatures
from detection.service import DetectionService, ServiceConfig
from detection.train_cli import main as train_main
from ops.world import World
from prognos.logs import setup_logging
from simulator.backfill import backfill
from simulator.fleet import Fleet, FleetSpec
from simulator.register import register_fleet
from simulator.scoring import fixed_threshold_baselines, recall_at_precision, score_orders


#: Alarm level settings of the baseline: ``nominal + scale * (level - nominal)``.
BASELINE_SCALES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.35, 1.5)
#: The seed every ServiceConfig default was tuned on (before learning from history): never scored.
TUNED_SEED = 11
SCORING_FLEETS = 3
#: End of the simulated period unless ``--end`` says otherwise (any fixed instant; this one is
#: the first run with a fixed end, 2026-12-06).
DEFAULT_END = datetime(2026, 12, 1, tzinfo=timezone.utc)


def _instant(text: str) -> datetime:
    """An ISO 8601 instant for ``--end``, in UTC (a time without an offset is taken as UTC)."""
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 instant: {text!r} (e.g. 2026-12-01T00:00Z)") from None
    return (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def main(argv=None) -> int:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--assets", type=int, help="fleet size (default 500; quick 120)")
    p.add_argument("--days", type=float, help="scored days (default 90; quick 45)")
    p.add_argument("--history-days", type=float, default=14.0, help="history before the scored period (default 14)")
    p.add_argument("--step-s", type=float, default=600.0, help="seconds between readings (default 600)")
    p.add_argument("--seed", type=int, default=101, help="scoring fleets' seeds: SEED, SEED+1, SEED+2 (default 101)")
    p.add_argument("--train-seed", type=int, default=1, help="seed of the fleet the platform learns on (default 1)")
    p.add_argument("--end", type=_instant, default=DEFAULT_END,
                   help=f"end of the simulated period, ISO 8601 (default {DEFAULT_END:%Y-%m-%dT%H:%MZ}: fixed, so a seed "
                        "names the same fleet in every run)")
    p.add_argument("--threshold", type=float, default=None, help="risk threshold for orders (default: the service's)")
    args = p.parse_args(argv)
    n_assets = args.assets or (120 if args.quick else 500)
    days = args.days or (45.0 if args.quick else 90.0)
    if n_assets < 1 or days <= 0 or args.history_days < 1 or args.step_s <= 0:
        p.error("--assets, --days, --step-s must be positive and --history-days >= 1")
    seeds = [args.seed + k for k in range(SCORING_FLEETS)]
    if args.train_seed in seeds:
        p.error(f"--train-seed {args.train_seed} is one of the scoring seeds {seeds}: score on fleets not learned on")
    if TUNED_SEED in seeds:
        p.error(f"seed {TUNED_SEED} is the one the service's defaults were tuned on: score other seeds")
    setup_logging("WARNING")
    t_start = time.perf_counter()
    end = args.end
    scored_from = end - timedelta(days=days)
    start = scored_from - timedelta(days=args.history_days)
    config = ServiceConfig() if args.threshold is None else ServiceConfig(risk_threshold=args.threshold)

    learned, learned_levels, t_learn = _learn(args.train_seed, n_assets, start, end, args.step_s)
    per_seed = [_score(seed, learned, learned_levels, config, n_assets, start, scored_from, end, args.step_s) for seed in seeds]

    keys = ("recall_24h", "precision", "median_lead_time_h", "false_orders_per_100_asset_months",
            "recall_ratio_at_equal_precision", "recall_ratio_to_baseline")
    mean = {k: _mean([r[k] for r in per_seed]) for k in keys}
    worst_recall = min(per_seed, key=lambda r: (r["recall_24h"] is not None, r["recall_24h"] or 0))
    worst_precision = min(per_seed, key=lambda r: (r["precision"] is not None, r["precision"] or 0))
    figures = {
        "assets": n_assets, "scored_days": days, "history_days": args.history_days, "step_s": args.step_s,
        "train_seed": args.train_seed, "seeds": seeds, "end": end.isoformat(),
        "recall_24h": worst_recall["recall_24h"], "precision": worst_precision["precision"],
        "worst": {"recall_24h_seed": worst_recall["seed"], "precision_seed": worst_precision["seed"],
                  "recall_ratio_at_equal_precision": min((r["recall_ratio_at_equal_precision"] for r in per_seed
                                                          if r["recall_ratio_at_equal_precision"] is not None),
                                                         default=None)},
        "mean": mean,
        "per_seed": per_seed,
        "learned_levels": {m: {"tau_h": lv.tau_h, "min_mode_score": lv.min_mode_score,
                               "evidence_learned": lv.evidence_learned,
                               "modes": {k: vars(v) for k, v in lv.modes.items()}}
                           for m, lv in sorted(learned_levels.items())},
        "levels_rule": next((lv.detail.get("rule_choice") for lv in learned_levels.values()), None),
        "learned_signatures": {f"{m}/{f}": {"events": s.events, "used": signatures.usable(s), "signature": s.signature}
                               for (m, f), s in sorted(learned.items())},
        "service_config": {k: v for k, v in vars(config).items() if k != "detector"},
        "seconds": {"learn": round(t_learn, 1), "total": round(time.perf_counter() - t_start, 1)},
    }
    lines = [f"seed {r['seed']}: recall_24h {_f(r['recall_24h'])} precision {_f(r['precision'])} "
             f"({_f(r['recall_ratio_at_equal_precision'])}x baseline at equal precision; frozen levels "
             f"{_f(r['frozen']['recall_24h'])} / {_f(r['frozen']['precision'])})" for r in per_seed]
    summary = (f"lead_time: worst recall_24h {_f(figures['recall_24h'])} worst precision {_f(figures['precision'])} "
               f"(mean {_f(mean['recall_24h'])} / {_f(mean['precision'])}); " + "; ".join(lines)
               + f"; learned on seed {args.train_seed}; {n_assets} assets x {days:g} d each")
    write(args.json, figures, summary)
    return 0


def _learn(seed: int, n_assets: int, start, end, step_s: float) -> tuple[dict, float]:
    """The platform's history of the learning fleet, and what ``prognos train`` learns from it."""
    t0 = time.perf_counter()
    spec = FleetSpec(n_assets=n_assets, seed=seed, start=start, id_prefix="lt")
    with World(broker=False) as world:
        s = world.settings
        fleet = Fleet(spec)
        register_fleet(s, fleet, provision_devices=False)
        _device_rows(s, fleet)
        backfill(s, fleet, start, end, step_s, outbox=False, progress=True, rollups=False)
        status = train_main(["--detection-only", "--quiet"], settings=s)
        if status not in (0, 1):
            raise RuntimeError(f"prognos train failed with status {status}")
        with psycopg.connect(s.dsn) as conn:
            learned, levels = signatures.load(conn), alarm_levels.load(conn)
    return learned, levels, time.perf_counter() - t0


def _score(seed: int, learned: dict, learned_levels: dict, config: ServiceConfig, n_assets: int, start, scored_from, end,
           step_s: float) -> dict:
    """One scoring fleet: the platform (with the learned signatures) against the baseline."""
    spec = FleetSpec(n_assets=n_assets, seed=seed, start=start, id_prefix="lt")
    t_start = time.perf_counter()
    with World(broker=False) as world:
        s = world.settings
        fleet = Fleet(spec)
        register_fleet(s, fleet, provision_devices=False)
        _device_rows(s, fleet)
        with psycopg.connect(s.dsn) as conn:             # deploy what was learned elsewhere
            for model_id in sorted({m for m, _ in learned}):
                signatures.save(conn, model_id, {f: v for (m, f), v in learned.items() if m == model_id})
            for lv in learned_levels.values():
                alarm_levels.save(conn, lv)
        t0 = time.perf_counter()
        backfill(s, fleet, start, scored_from, step_s, outbox=False, progress=True, rollups=False)
        # the same readings through two services: hand-tuned levels (frozen), then learned ones
        runs = {"frozen": DetectionService(s, replace(config, learned_levels=False), name="frozen"),
                "learned": DetectionService(s, config, name="learned")}
        for svc in runs.values():
            svc.start()
        rows = backfill(s, fleet, scored_from, end, step_s, outbox=True, progress=True, rollups=False)
        t_sim = time.perf_counter() - t0
        orders, t_detect = {}, 0.0
        for name, svc in runs.items():
            t1 = time.perf_counter()
            svc.run(until_idle=True)
            t_detect = time.perf_counter() - t1
            svc.close()
            with psycopg.connect(s.dsn) as conn:
                orders[name] = conn.execute(
                    "SELECT asset_id, mode, opened_at FROM service_orders WHERE kind = 'predictive'").fetchall()
                conn.execute("DELETE FROM service_orders")        # the next run starts with none
                conn.execute("DELETE FROM fleet_incidents")
        ours = score_orders(orders["learned"], fleet.ground_truth, start=scored_from, end=end, n_assets=n_assets)
        frozen = score_orders(orders["frozen"], fleet.ground_truth, start=scored_from, end=end, n_assets=n_assets)

    # The baseline sees the same readings: a twin fleet with the same seed replays them. Its
    # alarm levels are swept from tight to loose (1.0 = nameplate) to trace its recall against
    # its precision, so the two methods can be compared at equal precision.
    twin = Fleet(spec)
    d2a = {a.device_id: a.asset_id for a in twin.assets}
    sweep = fixed_threshold_baselines(_blocks(twin, start, end, step_s), d2a, BASELINE_SCALES)
    curve = {}
    for scale, base_orders in sweep.items():
        base_orders = [o for o in base_orders if o[2] >= scored_from]
        curve[scale] = score_orders(base_orders, twin.ground_truth, start=scored_from, end=end,
                                    n_assets=n_assets)
    base = curve[1.0]
    ratio = (ours["recall_24h"] / base["recall_24h"]) if base["recall_24h"] else None
    points = [dict(curve[x], scale=x) for x in BASELINE_SCALES]
    equal = recall_at_precision(points, ours["precision"]) if ours["precision"] is not None else None
    ratio_equal = (ours["recall_24h"] / equal["recall_24h"]) if equal and equal["recall_24h"] else None
    pm = _per_mode(ours)
    return {
        "seed": seed, "readings_scored": rows,
        "recall_24h": ours["recall_24h"], "precision": ours["precision"],
        "median_lead_time_h": ours["median_lead_time_h"],
        "false_orders_per_100_asset_months": ours["false_orders_per_100_asset_months"],
        "caught_per_mode": pm,
        "frozen": {"recall_24h": frozen["recall_24h"], "precision": frozen["precision"],
                   "median_lead_time_h": frozen["median_lead_time_h"],
                   "false_orders_per_100_asset_months": frozen["false_orders_per_100_asset_months"],
                   "orders": frozen["orders"], "caught_per_mode": _per_mode(frozen)},
        "baseline": {k: base[k] for k in ("recall_24h", "precision", "median_lead_time_h",
                                          "false_orders_per_100_asset_months", "orders", "per_mode")},
        "recall_ratio_to_baseline": ratio,
        "baseline_curve": [{k: pt[k] for k in ("scale", "recall_24h", "precision", "orders",
                                                "false_orders_per_100_asset_months")} for pt in points],
        "baseline_at_equal_precision": (None if equal is None else
                                        {k: equal[k] for k in ("scale", "recall_24h", "precision", "orders")}),
        "recall_ratio_at_equal_precision": ratio_equal,
        "detail": ours,
        "detection_readings_per_s": rows / t_detect if t_detect else None,
        "seconds": {"simulate_and_write": round(t_sim, 1), "detect": round(t_detect, 1),
                    "total": round(time.perf_counter() - t_start, 1)},
    }


def _per_mode(score: dict) -> dict:
    return {m: f"{v.get('caught_24h', 0) + v.get('averted_by_order', 0)}/{v.get('failures', 0) + v.get('averted', 0)}"
            for m, v in score["per_mode"].items()}


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def _f(x, nd=2):
    return "n/a" if x is None else f"{x:.{nd}f}"


def _device_rows(settings, fleet) -> None:
    """The detection service maps devices to assets; register them without broker credentials."""
    with psycopg.connect(settings.dsn) as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO devices (device_id, asset_id, password_hash) VALUES (%s, %s, 'none') "
                        "ON CONFLICT DO NOTHING", [(a.device_id, a.asset_id) for a in fleet.assets])


def _blocks(fleet, start, end, step_s, chunk_steps=36):
    total = int((end - start).total_seconds() // step_s)
    done = 0
    while done < total:
        k = min(chunk_steps, total - done)
        yield fleet.step(None, k, step_s)
        done += k


if __name__ == "__main__":
    raise SystemExit(main())
