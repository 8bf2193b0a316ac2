"""Service orders from detection: one live order per asset and failure mode, prioritised by the
SLA tier in force and the predicted time to failure, with a predicted MTTR.

Priority 1 is the most urgent. Urgency from the predicted hours to failure (<24 h: 1, <72 h: 2,
<7 d: 3, <14 d: 4, else 5), then the contract: platinum one step more urgent, bronze or no
contract one step less.

>>> priority(tier_rank=1, hours_to_failure=100.0)
2
>>> priority(tier_rank=None, hours_to_failure=10.0)
2
>>> priority(tier_rank=3, hours_to_failure=None)
3
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg
from psycopg.types.json import Jsonb

URGENCY_H = (24.0, 72.0, 168.0, 336.0)
LIVE = ("open", "scheduled", "in_progress")


def priority(tier_rank: int | None, hours_to_failure: float | None) -> int:
    if hours_to_failure is None:
        base = 3
    else:
        base = 1 + sum(hours_to_failure >= h for h in URGENCY_H)
    adjust = {1: -1, 2: 0, 3: 0}.get(tier_rank, 1)
    return int(min(5, max(1, base + adjust)))


def respond_by(opened_at: datetime, response_h: float | None, predicted_failure_at: datetime | None,
               mttr_h: float | None) -> datetime:
    """The SLA response target, brought forward so the repair can finish before the failure."""
    target = opened_at + timedelta(hours=response_h if response_h else 72.0)
    if predicted_failure_at is not None:
        latest_start = predicted_failure_at - timedelta(hours=mttr_h or 0.0)
        target = min(target, max(latest_start, opened_at))
    return target


@dataclass
class OrderProposal:
    asset_id: str
    mode: str
    kind: str                       # 'predictive' or 'corrective'
    opened_at: datetime             # telemetry time of the decision
    priority: int
    sla_tier: str | None
    risk: float | None
    predicted_failure_at: datetime | None
    predicted_mttr_h: float | None
    respond_by: datetime
    detail: dict = field(default_factory=dict)
    predicted_failure_lo: datetime | None = None    # 10th-90th percentile of the failure time
    predicted_failure_hi: datetime | None = None


def open_or_update(conn: psycopg.Connection, proposals: list[OrderProposal]) -> list[int]:
    """Open an order per proposal, or refresh the live one for the same asset and mode
    (risk, predicted failure, priority only ever more urgent). Returns ids of new orders."""
    opened = []
    for p in proposals:
        row = conn.execute(
            """INSERT INTO service_orders (asset_id, mode, kind, priority, sla_tier, risk,
                   predicted_failure_at, predicted_mttr_h, respond_by, opened_at, detail,
                   predicted_failure_lo, predicted_failure_hi)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (asset_id, mode) WHERE status IN ('open', 'scheduled', 'in_progress')
               DO UPDATE SET risk = EXCLUDED.risk,
                   predicted_failure_at = coalesce(EXCLUDED.predicted_failure_at, service_orders.predicted_failure_at),
                   predicted_failure_lo = coalesce(EXCLUDED.predicted_failure_lo, service_orders.predicted_failure_lo),
                   predicted_failure_hi = coalesce(EXCLUDED.predicted_failure_hi, service_orders.predicted_failure_hi),
                   predicted_mttr_h = coalesce(EXCLUDED.predicted_mttr_h, service_orders.predicted_mttr_h),
                   priority = least(service_orders.priority, EXCLUDED.priority),
                   respond_by = least(service_orders.respond_by, EXCLUDED.respond_by),
                   detail = service_orders.detail || EXCLUDED.detail
               RETURNING order_id, (xmax = 0) AS inserted""",
            (p.asset_id, p.mode, p.kind, p.priority, p.sla_tier, p.risk, p.predicted_failure_at,
             p.predicted_mttr_h, p.respond_by, p.opened_at, Jsonb(p.detail), p.predicted_failure_lo,
             p.predicted_failure_hi)).fetchone()
        if row[1]:
            opened.append(row[0])
            conn.execute("INSERT INTO service_order_history (order_id, status, actor, note) VALUES (%s, 'open', 'detection', %s)",
                         (row[0], f"{p.kind} order opened at risk {p.risk if p.risk is not None else 'n/a'}"))
    return opened


def new_repairs(conn: psycopg.Connection, after_id: int) -> list[tuple]:
    """Repairs recorded after ``after_id``: (id, asset_id, mode, finished_at, first_time_fix)."""
    return conn.execute(
        "SELECT id, asset_id, mode, finished_at, first_time_fix FROM repairs WHERE id > %s ORDER BY id",
        (after_id,)).fetchall()


def complete_repaired(conn, repair_id: int, asset_id: str, mode: str, finished_at: datetime,
                      first_time_fix: bool, actor: str = "detection") -> list[int]:
    """Complete the live order of the asset and mode that the repair fixed (opened before it),
    link the repair to it and give the repair the order's kind. The one place orders are closed
    by a repair: ingest calls it for a device's repair_finished event, detection for repairs
    recorded otherwise (backfill, imports); whichever comes second finds nothing left to do.
    ``conn`` is a psycopg connection or cursor inside the caller's transaction."""
    done = conn.execute(
        """UPDATE service_orders SET status = 'completed', closed_at = %s, first_time_fix = %s
           WHERE asset_id = %s AND mode = %s AND status IN ('open', 'scheduled', 'in_progress')
             AND opened_at <= %s RETURNING order_id, kind""",
        (finished_at, first_time_fix, asset_id, mode, finished_at)).fetchall()
    for order_id, kind in done:
        conn.execute("INSERT INTO service_order_history (order_id, at, status, actor, note) "
                     "VALUES (%s, %s, 'completed', %s, %s)",
                     (order_id, finished_at, actor, f"repair {repair_id} finished"))
        conn.execute("UPDATE repairs SET order_id = %s, kind = %s WHERE id = %s AND order_id IS NULL",
                     (order_id, kind, repair_id))
    return [d[0] for d in done]


def refresh_predictions(conn: psycopg.Connection, rows: list[tuple]) -> int:
    """Bring the live predictive orders of assets up to date with the predictor's latest
    time to failure: ``rows`` of (asset_id, failure_at, failure_lo, failure_hi, p_fail by mode).
    Returns the number of orders updated."""
    if not rows:
        return 0
    cur = conn.execute(
        """UPDATE service_orders o SET predicted_failure_at = x.f, predicted_failure_lo = x.lo,
               predicted_failure_hi = x.hi,
               detail = o.detail || jsonb_build_object('p_fail', (x.p ->> o.mode)::real)
           FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[], %s::timestamptz[], %s::jsonb[])
                AS x(a, f, lo, hi, p)
           WHERE o.asset_id = x.a AND o.kind = 'predictive'
             AND o.status IN ('open', 'scheduled', 'in_progress')""",
        ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
         [Jsonb(r[4] or {}) for r in rows]))
    return cur.rowcount
