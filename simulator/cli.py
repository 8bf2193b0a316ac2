"""``prognos simulate``: register a fleet, backfill its history, run it live, score orders.

Examples::

    prognos simulate register --assets 500 --seed 7
    prognos simulate backfill --assets 500 --seed 7 --days 90 --outbox
    prognos simulate run --assets 500 --seed 7 --acceleration 3600 --rate-hz 0.0167 --batch 10
    prognos simulate run --assets 10000 --acceleration 1 --rate-hz 1 --batch 10 --start-hours-ago 0
    prognos simulate run --misbehave malformed duplicate --misbehave-devices 2 --duration 60
    prognos simulate score --ground-truth .prognos/simulator/ground_truth.jsonl

The fleet (ids, models, sites, physics) is a function of ``--assets``, ``--seed``,
``--prefix``, ``--models``, ``--hazard-scale`` and its start; give the same values to every
subcommand.  ``run`` after ``backfill`` of the same fleet replays the backfilled period
(nothing written) and continues the very same fleet live; ``run --backfill-days N`` does both
in one process.  The ground truth goes to ``<state_dir>/simulator/ground_truth.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from prognos.logs import event, setup_logging

log = logging.getLogger("prognos.simulator")


def _positive_float(s: str) -> float:
    v = float(s)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {s}")
    return v


def _time(s: str) -> datetime:
    try:
        t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {s!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _fleet_args(p: argparse.ArgumentParser) -> None:
    from simulator.catalog import CATALOG

    g = p.add_argument_group("fleet")
    g.add_argument("--assets", type=int, default=500, help="fleet size (default 500)")
    g.add_argument("--seed", type=int, default=7)
    g.add_argument("--prefix", default="sim", help="id prefix of assets/devices (default sim)")
    g.add_argument("--models", nargs="+", choices=sorted(CATALOG), default=None)
    g.add_argument("--hazard-scale", type=float, default=1.0,
                   help="multiply every failure-onset hazard (demos: 5-20)")
    g.add_argument("--start", type=_time, default=None,
                   help="simulated start (ISO 8601); default: from --days / --start-hours-ago")


def _make_fleet(args, start: datetime):
    from simulator.fleet import Fleet, FleetSpec

    if args.assets < 1:
        raise SystemExit("--assets must be >= 1")
    return Fleet(FleetSpec(n_assets=args.assets, seed=args.seed, start=start,
                           models=args.models, id_prefix=args.prefix,
                           hazard_scale=args.hazard_scale))


def _floor(t: datetime, step_s: float = 3600.0) -> datetime:
    ts = t.timestamp()
    return datetime.fromtimestamp(ts - ts % step_s, tz=timezone.utc)


def _gt_path(settings, args) -> Path:
    from simulator.runner import default_ground_truth_path

    return Path(args.ground_truth) if getattr(args, "ground_truth", None) else \
        default_ground_truth_path(settings)


def cmd_register(args, settings) -> int:
    from simulator.register import register_fleet

    fleet = _make_fleet(args, args.start or _floor(datetime.now(timezone.utc)))
    creds = register_fleet(settings, fleet)
    print(json.dumps({"assets": len(fleet.assets), "devices": len(creds),
                      "credentials": str(settings.device_credentials)}))
    return 0


def cmd_backfill(args, settings) -> int:
    from simulator.backfill import backfill
    from simulator.register import register_fleet

    now = datetime.now(timezone.utc)
    start = args.start or _floor(now - timedelta(days=args.days))
    end = min(start + timedelta(days=args.days), now)
    fleet = _make_fleet(args, start)
    register_fleet(settings, fleet)
    rows = backfill(settings, fleet, start, end, step_s=args.step_s, outbox=args.outbox,
                    progress=not args.no_progress)
    path = fleet.ground_truth.write_jsonl(_gt_path(settings, args))
    _save_history(settings, args, start, fleet.clock, args.step_s)
    print(json.dumps({"rows": rows, "start": start.isoformat(), "end": fleet.clock.isoformat(),
                      "ground_truth": str(path), "events": len(fleet.ground_truth)}))
    return 0


def cmd_run(args, settings) -> int:
    from simulator.backfill import backfill
    from simulator.register import register_fleet
    from simulator.runner import LiveRunner, RunOptions

    now = datetime.now(timezone.utc)
    dt = 1.0 / args.rate_hz
    live_start = _floor(now - timedelta(hours=args.start_hours_ago), max(dt, 1.0))
    start = args.start or (live_start - timedelta(days=args.backfill_days))
    fleet = _make_fleet(args, start)
    latest = _latest_telemetry(settings, fleet.device_ids())
    hist = _load_history(settings, args)
    if args.start is None and latest is not None and hist is not None and \
            hist["end"] >= latest and hist["end"] <= now:
        # the same fleet was backfilled: replay its physics (nothing written; the physics does
        # not depend on how the period is cut) and continue live where the history ends, so
        # history, live data and ground truth are one fleet
        fleet = _make_fleet(args, hist["start"])
        _fast_forward(fleet, hist["end"], hist["step_s"], progress=not args.no_progress)
        start = live_start = fleet.clock
        args.backfill_days = 0.0
        event(log, "run_continues_backfilled_fleet", start=hist["start"].isoformat(),
              live_from=live_start.isoformat())
    elif args.start is None and latest is not None and latest >= start:
        # this fleet already has telemetry there (an earlier backfill or run): continue after
        # it rather than publish readings ingest would drop as duplicates
        live_start = _floor(latest + timedelta(seconds=max(dt, 1.0)), max(dt, 1.0)) + \
            timedelta(seconds=max(dt, 1.0))
        start = live_start
        args.backfill_days = 0.0
        event(log, "run_continues_after_existing_telemetry", latest=latest.isoformat(),
              start=start.isoformat())
        fleet = _make_fleet(args, start)
    creds = register_fleet(settings, fleet)
    if args.backfill_days > 0:
        backfill(settings, fleet, start, live_start, step_s=args.backfill_step_s,
                 outbox=args.outbox, progress=not args.no_progress)
    opts = RunOptions(acceleration=args.acceleration, rate_hz=args.rate_hz, batch=args.batch,
                      qos=args.qos, misbehave=args.misbehave or [],
                      misbehave_devices=args.misbehave_devices,
                      execute_orders=args.execute_orders, duration_s=args.duration,
                      until=args.until, ground_truth_path=_gt_path(settings, args))
    out = LiveRunner(settings, fleet, opts, credentials=creds).run()
    print(json.dumps(out))
    return 0


def _history_path(settings) -> Path:
    return settings.state_dir / "simulator" / "history.json"


def _fleet_key(args) -> dict:
    return {"assets": args.assets, "seed": args.seed, "prefix": args.prefix,
            "models": sorted(args.models) if args.models else None,
            "hazard_scale": args.hazard_scale}


def _save_history(settings, args, start: datetime, end: datetime, step_s: float) -> None:
    """What was backfilled, so that a later ``run`` continues the very same fleet."""
    path = _history_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**_fleet_key(args), "start": start.isoformat(),
                                "end": end.isoformat(), "step_s": step_s}))


def _load_history(settings, args) -> dict | None:
    try:
        h = json.loads(_history_path(settings).read_text())
    except (FileNotFoundError, ValueError):
        return None
    if {k: h.get(k) for k in _fleet_key(args)} != _fleet_key(args):
        return None
    return {"start": _time(h["start"]), "end": _time(h["end"]), "step_s": float(h["step_s"])}


def _fast_forward(fleet, until: datetime, step_s: float, progress: bool = True) -> None:
    from tqdm import tqdm

    total = int(round((until - fleet.clock).total_seconds() / step_s))
    per = max(1, 500_000 // max(1, len(fleet.assets)))
    with tqdm(total=total, unit="steps", disable=not progress, desc="replay") as bar:
        done = 0
        while done < total:
            k = min(per, total - done)
            fleet.step(None, k, step_s)
            done += k
            bar.update(k)


def _latest_telemetry(settings, device_ids: list[str]) -> datetime | None:
    import psycopg

    with psycopg.connect(settings.dsn) as conn:
        return conn.execute(
            "SELECT max(t) FROM unnest(%s::text[]) AS d, LATERAL (SELECT time AS t FROM telemetry "
            "WHERE device_id = d ORDER BY time DESC LIMIT 1) AS last", (device_ids,)).fetchone()[0]


def cmd_score(args, settings) -> int:
    from simulator.ground_truth import GroundTruth
    from simulator.scoring import score_orders

    path = _gt_path(settings, args)
    if not path.exists():
        raise SystemExit(f"no ground truth at {path}")
    gt = GroundTruth.read_jsonl(path)
    if args.orders:
        orders = [json.loads(line) for line in Path(args.orders).read_text().splitlines()
                  if line.strip()]
    else:
        import psycopg

        with psycopg.connect(settings.dsn) as conn:
            orders = conn.execute(
                "SELECT asset_id, mode, opened_at FROM service_orders WHERE kind = 'predictive' "
                "AND asset_id = ANY(%s)", (gt.asset_ids,)).fetchall()
    res = score_orders(orders, gt, horizon_h=args.horizon_h, lead_h=args.lead_h,
                       start=args.start, end=args.end)
    print(json.dumps(res, indent=1, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from simulator.misbehave import KINDS

    p = argparse.ArgumentParser(prog="prognos simulate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("register", help="write the fleet's installed base and devices")
    _fleet_args(r)
    r.set_defaults(func=cmd_register)

    b = sub.add_parser("backfill", help="write months of history straight into TimescaleDB")
    _fleet_args(b)
    b.add_argument("--days", type=_positive_float, default=90.0)
    b.add_argument("--step-s", type=_positive_float, default=60.0,
                   help="simulated seconds between readings (default 60)")
    b.add_argument("--outbox", action="store_true",
                   help="also write ingest_batches rows (detection replays the period)")
    b.add_argument("--no-progress", action="store_true")
    b.add_argument("--ground-truth", default=None)
    b.set_defaults(func=cmd_backfill)

    u = sub.add_parser("run", help="publish live over MQTT on an accelerated simulated clock")
    _fleet_args(u)
    u.add_argument("--acceleration", type=float, default=3600.0,
                   help="simulated seconds per wall second until caught up (default 3600)")
    u.add_argument("--rate-hz", type=_positive_float, default=1.0 / 60.0,
                   help="readings per device per simulated second (default 1/60)")
    u.add_argument("--batch", type=int, default=10, help="readings per message (1..500)")
    u.add_argument("--qos", type=int, choices=(0, 1), default=1)
    u.add_argument("--start-hours-ago", type=float, default=24.0,
                   help="where the live clock starts (default 24 h ago)")
    u.add_argument("--backfill-days", type=float, default=0.0,
                   help="first backfill this many days before the live start (same fleet)")
    u.add_argument("--backfill-step-s", type=_positive_float, default=60.0)
    u.add_argument("--outbox", action="store_true", help="backfill with ingest_batches rows")
    u.add_argument("--misbehave", nargs="+", choices=KINDS, default=None)
    u.add_argument("--misbehave-devices", type=int, default=3)
    u.add_argument("--execute-orders", action="store_true",
                   help="technicians act on open predictive/preventive orders")
    u.add_argument("--duration", type=_positive_float, default=None, help="wall seconds")
    u.add_argument("--until", type=_time, default=None, help="simulated time to stop at")
    u.add_argument("--no-progress", action="store_true")
    u.add_argument("--ground-truth", default=None)
    u.set_defaults(func=cmd_run)

    s = sub.add_parser("score", help="score predictive orders against the ground truth")
    s.add_argument("--ground-truth", default=None)
    s.add_argument("--orders", default=None,
                   help="JSON Lines of {asset_id, mode, opened_at} (default: service_orders)")
    s.add_argument("--horizon-h", type=_positive_float, default=336.0)
    s.add_argument("--lead-h", type=float, default=24.0)
    s.add_argument("--start", type=_time, default=None)
    s.add_argument("--end", type=_time, default=None)
    s.set_defaults(func=cmd_score)
    return p


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    args = build_parser().parse_args(argv)
    from prognos.config import Settings

    settings = Settings()
    import psycopg

    try:
        return args.func(args, settings)
    except (ValueError, RuntimeError, KeyError, OSError, psycopg.Error) as exc:
        # bad input, an unreachable broker or database: one clear line, no traceback
        event(log, "simulate_failed", level=logging.ERROR, command=args.cmd, error=str(exc))
        print(f"prognos simulate {args.cmd}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
