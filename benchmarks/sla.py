"""Calibration of the SLA breach probability on the simulator's closed loop.

The simulator's fleet runs for ``--days`` simulated days (its own physics: failures, a
technician dispatched after a delay drawn from the tier's response time, repair times drawn per
model, site and parts delay). Every failure of a mode becomes a corrective order in a fresh
database through the product's own path (:mod:`orders.state`): opened at the failure, scheduled
at once for the simulator's dispatch time, in progress at the repair's start (a device event),
completed at its end (the repair row, as ingest writes it).

Each order of the second half of the period is judged at several moments while it is live: one
minute after it opened (visit planned), and 2, 6, 12 and 24 hours into the repair if it is
still under way. At each moment :func:`orders.sla.order_clocks` gives, as of that moment and
from the history up to it, the restore deadline and the breach probability (repair-time
distribution: the MTTR model (:mod:`detection.mttr`) fitted on the repairs finished before the
second half began, as the product would have had it: :mod:`orders.repair_time`). Repairs
record what a technician reports (technician, skill level, parts on hand, region); the factors
the simulator drew stay in its ground truth. The outcome is whether the
asset was restored after the deadline. The baseline is the anchors' fixed warning time: at the
same moment, "will breach" = 1 if the restore clock is nearing breach or breached (the tier's
``restore_warning_h`` before the deadline), else 0.

Figures: ``brier`` (probability), ``baseline_brier`` (warning rule), ``reliability`` (10 bins of
the probability: count, mean predicted, observed breach rate), ``n_orders``, ``n_judgements``,
``base_rate``. Nothing here is tuned: the probability's only inputs are the product's.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import numpy as np
import psycopg
from psycopg.types.json import Jsonb
from tqdm import tqdm

from benchmarks.common import parser, write
from ops.world import World
from orders import sla, state
from detection.mttr import store
from simulator.fleet import Fleet, FleetSpec
from simulator.technicians import OBSERVED
from simulator.register import register_fleet

H = timedelta(hours=1)
PROBES_H = (2.0, 6.0, 12.0, 24.0)


def _t(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def simulate(n_assets: int, days: int, seed: int) -> tuple[Fleet, list[dict]]:
    """Run the fleet; return it and one record per failure with its repair (start, end)."""
    fleet = Fleet(FleetSpec(n_assets=n_assets, seed=seed, hazard_scale=3.0, sensor_faults=False,
                            start=datetime(2026, 1, 5, tzinfo=timezone.utc)))
    for _ in tqdm(range(days), desc="simulate", unit="day"):
        fleet.step(None, 24, 3600.0)
    open_: dict[tuple, dict] = {}
    out = []
    for e in sorted(fleet.ground_truth.events, key=lambda e: e["t"]):
        key = (e["asset_id"], e.get("mode"))
        if e["event"] == "failure":
            open_[key] = {"asset_id": e["asset_id"], "mode": e["mode"], "failed": _t(e["t"])}
        elif e["event"] == "repair_start" and e.get("kind") == "corrective" and key in open_:
            open_[key]["start"] = _t(e["t"])
        elif e["event"] == "repair_end" and e.get("kind") == "corrective" and key in open_:
            rec = open_.pop(key)
            if "start" in rec:
                # what the technician records; the factors drawn stay in the ground truth
                rec["end"], rec["detail"] = _t(e["t"]), {k: e[k] for k in OBSERVED if k in e}
                out.append(rec)
    return fleet, out


def record(conn, fleet: Fleet, failures: list[dict]) -> list[tuple[int, dict]]:
    """Write the orders through orders.state, in time order of their events."""
    tier = {a.asset_id: a.tier for a in fleet.assets}
    device = {a.asset_id: a.device_id for a in fleet.assets}
    events = []
    for i, f in enumerate(failures):
        events += [(f["failed"], 0, i), (f["start"], 1, i), (f["end"], 2, i)]
    ids: dict[int, int] = {}
    for at, kind, i in tqdm(sorted(events), desc="orders", unit="event"):
        f = failures[i]
        with conn.transaction():
            if kind == 0:
                if state.live_order(conn, f["asset_id"], f["mode"]) is not None:
                    continue              # still open from an earlier failure of the mode
                ids[i] = state.create(conn, asset_id=f["asset_id"], mode=f["mode"], kind="corrective",
                                      status="approved", priority=2, opened_at=at, actor="detection",
                                      sla_tier=tier[f["asset_id"]])
                state.transition(conn, ids[i], "scheduled", actor="planner:benchmark", at=at + timedelta(minutes=1),
                                 changes={"scheduled_for": f["start"]})
            elif i not in ids:
                continue
            elif kind == 1:
                state.transition(conn, ids[i], "in_progress", actor=f"device:{device[f['asset_id']]}", at=at,
                                 reason="repaired")
            else:
                rid = conn.execute(
                    "INSERT INTO repairs (asset_id, mode, kind, started_at, finished_at, detail) "
                    "VALUES (%s, %s, 'corrective', %s, %s, %s) ON CONFLICT (asset_id, started_at) DO NOTHING RETURNING id",
                    (f["asset_id"], f["mode"], f["start"], at, Jsonb(f["detail"]))).fetchone()
                if rid:
                    state.complete_repaired(conn, rid[0], f["asset_id"], f["mode"], at,
                                            actor=f"device:{device[f['asset_id']]}")
    return [(ids[i], f) for i, f in enumerate(failures) if i in ids]


def judge(conn, orders: list[tuple[int, dict]], since: datetime, mttr_model) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    p, warn, y = [], [], []
    n = 0
    for oid, f in tqdm([o for o in orders if o[1]["failed"] >= since], desc="judge", unit="order"):
        probes = [f["failed"] + timedelta(minutes=2)] + [f["start"] + h * H for h in PROBES_H]
        final = sla.order_clocks(conn, "o.order_id = %(id)s", {"id": oid}, f["end"] + H, with_probability=False)[0]
        if final.restore is None:
            continue                      # no contract tier: no SLA
        n += 1
        breached = f["end"] > final.restore.deadline
        for t in probes:
            if t >= f["end"]:
                continue
            [c] = sla.order_clocks(conn, "o.order_id = %(id)s", {"id": oid}, t, mttr_model=mttr_model)
            if c.breach_probability is None:
                continue
            p.append(c.breach_probability)
            warn.append(1.0 if c.restore.state in ("nearing_breach", "breached") else 0.0)
            y.append(1.0 if breached else 0.0)
    return np.array(p), np.array(warn), np.array(y), n


def reliability(p: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict]:
    edges = np.linspace(0, 1, bins + 1)
    k = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    return [{"bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "n": int((k == b).sum()),
             "mean_predicted": round(float(p[k == b].mean()), 4) if (k == b).any() else None,
             "observed": round(float(y[k == b].mean()), 4) if (k == b).any() else None}
            for b in range(bins)]


def main(argv=None) -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--assets", type=int, default=None)
    ap.add_argument("--days", type=int, default=None)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    n_assets = args.assets or (300 if args.quick else 600)
    days = args.days or (120 if args.quick else 240)
    t0 = time.monotonic()
    fleet, failures = simulate(n_assets, days, args.seed)
    with World(broker=False) as world:
        register_fleet(world.settings, fleet, provision_devices=False)
        with psycopg.connect(world.settings.dsn, autocommit=True) as conn:
            orders = record(conn, fleet, failures)
            since = fleet.start + timedelta(days=days / 2)
            model = store.fit_from_db(conn, as_of=since)      # the MTTR model as it stood then
            p, warn, y, n = judge(conn, orders, since, model)
    brier = float(np.mean((p - y) ** 2))
    base = float(np.mean((warn - y) ** 2))
    figures = {"brier": round(brier, 4), "baseline_brier": round(base, 4), "reliability": reliability(p, y),
               "n_orders": n, "n_judgements": int(len(y)), "base_rate": round(float(y.mean()), 4),
               "assets": n_assets, "days": days, "seed": args.seed, "seconds": round(time.monotonic() - t0, 1)}
    write(args.json, figures, f"sla: brier {brier:.4f} vs fixed-warning baseline {base:.4f} "
                              f"({len(y)} judgements of {n} orders, breach rate {y.mean():.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
