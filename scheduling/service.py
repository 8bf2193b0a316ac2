"""One planner run against the database: ``prognos plan`` and ``POST /api/v1/schedule/plan``.

1. Restocks that have arrived are booked; parts are set aside for the plannable orders in
   priority order. An order whose parts are missing is put on hold (``orders.state``, reason
   ``waiting_parts``: its SLA clock pauses) and is not scheduled; an on-hold order whose
   parts have arrived is resumed.
2. Plannable orders (approved, or scheduled and not started) with their site's coordinates, the
   predicted repair time, the skill level the failure mode needs; technicians' shifts in the
   horizon (default: the rest of today and the next working day, ``DEFAULT_WORKING_DAYS``);
   pins; the plan in force (re-planning moves few orders).
3. :func:`scheduling.planner.plan`; the plan is saved (``scheduling.plans``); orders in it
   become (or stay) ``scheduled`` with the technician as assignee and the start as
   ``scheduled_for``; scheduled orders left out go back to ``approved``. Changes are made by
   ``actor`` (``system`` for ``prognos plan``, the planner's token in the API).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timezone

import psycopg

from detection.mttr import MttrCache, predicted_mttr
from orders.state import transition
from prognos.logs import event
from scheduling import parts, plans, technicians
from scheduling.planner import Order, Plan, plan, working_days

log = logging.getLogger("prognos.scheduling")
DEFAULT_WORKING_DAYS = 2
DEFAULT_TIME_LIMIT_S = 10.0
ACTOR = "system"
HOLD_REASON = "waiting_parts"


def _service_hours(cache: MttrCache, asset_id: str, mode: str, kind: str, order_h: float | None,
                   nominal_h: float) -> float:
    """The predicted repair time (median): the MTTR model, else the order's figure, else the
    failure mode's nominal one."""
    try:
        median, _lo, _hi = predicted_mttr(cache, asset_id, mode, kind=kind)
    except LookupError:
        median = None
    if median and median > 0:
        return float(median)
    return float(order_h) if order_h and order_h > 0 else float(nominal_h)


def candidates(conn, regions: list[str] | None = None) -> list[tuple]:
    return conn.execute(
        """SELECT o.order_id, o.asset_id, a.model_id, o.mode, s.lat, s.lon, s.region, o.priority,
                  o.predicted_mttr_h, fm.mttr_h, o.respond_by, o.predicted_failure_at,
                  coalesce(r.skill_level, 1), o.status, o.held_from, o.kind,
                  o.detail->>'assignee', o.detail->>'scheduled_for'
           FROM service_orders o
           JOIN assets a ON a.asset_id = o.asset_id
           JOIN sites s ON s.site_id = a.site_id
           JOIN failure_modes fm ON fm.model_id = a.model_id AND fm.mode = o.mode
           LEFT JOIN mode_requirements r ON r.model_id = a.model_id AND r.mode = o.mode
           WHERE (o.status IN ('approved', 'scheduled')
                  OR (o.status = 'on_hold' AND EXISTS (SELECT 1 FROM part_allocations p
                                                        WHERE p.order_id = o.order_id AND p.state <> 'released')))
             AND (%(regions)s::text[] IS NULL OR s.region = ANY(%(regions)s))
           ORDER BY o.priority, o.respond_by NULLS LAST, o.order_id""", {"regions": regions}).fetchall()


def run(conn: psycopg.Connection, *, now: datetime | None = None, days: int = DEFAULT_WORKING_DAYS,
        end: datetime | None = None, time_limit: float = DEFAULT_TIME_LIMIT_S, actor: str = ACTOR,
        regions: list[str] | None = None, seed: int = 0) -> tuple[int, Plan]:
    """Plan ``[now, end)`` (default: through the end of the ``days``-th working day) for the
    orders and technicians of ``regions`` (default all); returns the plan id and the plan."""
    now = now or datetime.now(timezone.utc)
    end = end or working_days(now, days)
    if end <= now:
        raise ValueError(f"the horizon ends ({end.isoformat()}) before it starts ({now.isoformat()})")
    received = parts.receive_due(conn, now)
    settled = parts.settle(conn, now)
    rows = candidates(conn, regions)
    no_coords = {r[0] for r in rows if r[4] is None or r[5] is None}
    cache = MttrCache(conn)
    orders = [Order(oid, model_id, mode, float(lat), float(lon), region, int(prio),
                    _service_hours(cache, asset_id, mode, kind, mttr_o, mttr_n), respond_by, pfa, int(level))
              for (oid, asset_id, model_id, mode, lat, lon, region, prio, mttr_o, mttr_n, respond_by, pfa, level,
                   _st, _held, kind, _a, _s) in rows if oid not in no_coords]
    waiting = parts.allocate(conn, orders, now)
    orders = [replace(o, parts_ready=False) if o.order_id in waiting else o for o in orders]
    held = resumed = 0
    status, current = {}, {}
    for (oid, *_, st, held_from, kind, assignee, scheduled_for) in rows:
        status[oid] = st
        current[oid] = (assignee, scheduled_for)
        if oid in waiting:
            if st != "on_hold":
                transition(conn, oid, "on_hold", actor=actor, reason=HOLD_REASON, at=now,
                           note="parts out of stock at the depot; restock ordered")
                held += 1
                status[oid] = "on_hold"
        elif st == "on_hold":
            transition(conn, oid, held_from, actor=actor, reason="resumed", at=now)
            resumed += 1
            status[oid] = held_from
    techs = technicians.load(conn, now, end, regions)
    ids = [o.order_id for o in orders]
    result = plan(orders, techs, now, end, pins=plans.pins(conn, ids), previous=plans.assignments(conn, ids),
                  time_limit=time_limit, seed=seed)
    for oid in no_coords:
        result.unscheduled[oid] = "the site has no coordinates"
    summary = {"orders": len(rows), "visits": len(result.visits), "unscheduled": len(result.unscheduled),
               "waiting_for_parts": len(waiting), "put_on_hold": held, "resumed": resumed,
               "restocks_received": received, "parts_settled": settled, "changed_technician": len(result.changed),
               "technicians_on_shift": sum(1 for t in techs if t.shifts)}
    plan_id = plans.save(conn, result, now, actor, summary, regions)
    planned = {v.order_id: v for v in result.visits}
    for oid, st in status.items():
        v = planned.get(oid)
        if v is not None and st == "scheduled" and current[oid] == (v.technician_id, v.starts_at.isoformat()):
            continue
        if v is not None and st in ("approved", "scheduled"):
            transition(conn, oid, "scheduled", actor=actor, reason="planning", at=now, note=f"plan {plan_id}",
                       changes={"assignee": v.technician_id, "scheduled_for": v.starts_at.isoformat()})
        elif v is None and st == "scheduled":
            transition(conn, oid, "approved", actor=actor, reason="planning", at=now,
                       note=f"left out of plan {plan_id}: {result.unscheduled.get(oid, '')}")
    event(log, "plan_built", plan_id=plan_id, **summary, km=round(result.km, 1),
          seconds=round(result.seconds, 2))
    return plan_id, result
