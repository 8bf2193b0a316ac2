"""``prognos plan``: build the field schedule for the horizon and print its summary.

    prognos plan [--now ISO] [--days N | --end ISO] [--time-limit S] [--region R ...] [--json]
    prognos plan pin ORDER_ID TECHNICIAN_ID [--at ISO]
    prognos plan unpin ORDER_ID
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone

import psycopg

from prognos.config import Settings
from scheduling import plans, service


def _ts(s: str) -> datetime:
    try:
        t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 timestamp: {s!r}") from None
    if t.tzinfo is None:
        raise argparse.ArgumentTypeError(f"timestamp needs a UTC offset (e.g. {s}Z): {s!r}")
    return t.astimezone(timezone.utc)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("pin", "unpin"):
        return _pins(argv)
    ap = argparse.ArgumentParser(prog="prognos plan", description=__doc__.splitlines()[0])
    ap.add_argument("--now", type=_ts, default=None, help="planning time (default: now)")
    ap.add_argument("--days", type=int, default=service.DEFAULT_WORKING_DAYS, help="working days (default %(default)s)")
    ap.add_argument("--end", type=_ts, default=None, help="horizon end instead of --days")
    ap.add_argument("--time-limit", type=float, default=service.DEFAULT_TIME_LIMIT_S,
                    help="solver seconds (default %(default)s)")
    ap.add_argument("--region", action="append", default=None, help="plan this territory only (repeatable)")
    ap.add_argument("--json", action="store_true", help="print the whole plan as JSON")
    args = ap.parse_args(argv)
    if args.days < 1 or args.time_limit <= 0:
        ap.error("--days must be >= 1 and --time-limit > 0")
    with psycopg.connect(Settings().dsn, autocommit=True) as conn:
        try:
            plan_id, _ = service.run(conn, now=args.now, days=args.days, end=args.end, time_limit=args.time_limit,
                                     regions=args.region)
        except ValueError as exc:
            print(f"prognos plan: {exc}", file=sys.stderr)
            return 2
        out = plans.read(conn, plan_id)
    if not args.json:
        out = {k: out[k] for k in ("plan_id", "horizon_start", "horizon_end", "km", "solver_seconds", "summary")}
    print(json.dumps(out, default=str, indent=1))
    return 0


def _pins(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog=f"prognos plan {argv[0]}")
    ap.add_argument("order_id", type=int)
    if argv[0] == "pin":
        ap.add_argument("technician_id")
        ap.add_argument("--at", type=_ts, default=None, help="visit start (default: any time in the horizon)")
    args = ap.parse_args(argv[1:])
    with psycopg.connect(Settings().dsn, autocommit=True) as conn:
        try:
            if argv[0] == "pin":
                plans.pin(conn, args.order_id, args.technician_id, args.at, "cli")
            elif not plans.unpin(conn, args.order_id):
                print(f"prognos plan unpin: order {args.order_id} is not pinned", file=sys.stderr)
                return 1
        except psycopg.errors.ForeignKeyViolation as exc:
            print(f"prognos plan {argv[0]}: no such order or technician ({exc.diag.message_detail})", file=sys.stderr)
            return 1
    print(json.dumps({argv[0]: args.order_id}))
    return 0
