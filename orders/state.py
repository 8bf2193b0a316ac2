"""The service order state machine and the one writer of ``service_orders`` and
``service_order_history``.

::

    proposed --approve--> approved --schedule--> scheduled --start--> in_progress --complete--> completed
        |                    ^------unschedule------'
        +--reject--> rejected
    any live status --cancel--> cancelled
    approved / scheduled / in_progress --hold--> on_hold --resume--> the status it was held from

A device's repair report may also move an approved order straight to in_progress (the
technician was on site though nobody scheduled the visit); people cannot.

Live = proposed, approved, scheduled, in_progress, on_hold (at most one live order per asset
and failure mode). Predictive orders open ``proposed`` and :mod:`orders.triage` approves them
or leaves them to a planner; corrective and planner-opened orders open ``approved``.

Every change, a status change or a planning change (priority, schedule, assignee, escalation),
writes one history row (from status, to status, actor, reason code, note, time) and emits one
order event in the same transaction. Time is the caller's clock: telemetry (simulated) time for
detection and devices, the request's ``at`` (default now) for people. Changes by people may not
go back before the order's last change (:class:`Invalid`); changes by the system (``detection``,
``device:...``, ``triage``) are clamped to it, so one order's history is always in time order.

The statuses are defined in the database (``order_statuses``, migration 0020); ``STATUSES`` and
``LIVE`` here mirror it for typing and the API schema, and a test checks they agree.

>>> can_move("proposed", "approved"), can_move("completed", "approved")
(True, False)
>>> right_needed("scheduled", "in_progress")
'start'
>>> sorted(allowed_next("scheduled"))
['approved', 'cancelled', 'in_progress', 'on_hold']
>>> event_type("on_hold", "scheduled")
'order.resumed'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
from psycopg import errors
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from orders.events import emit
from schemas.telemetry import as_found_error

STATUSES = ("proposed", "approved", "scheduled", "in_progress", "on_hold", "completed", "rejected",
            "cancelled")
LIVE = ("proposed", "approved", "scheduled", "in_progress", "on_hold")
TERMINAL = ("completed", "rejected", "cancelled")
HOLD_FROM = ("approved", "scheduled", "in_progress")
HOLD_REASONS = ("waiting_customer", "waiting_parts")
#: Reasons a planner may give when rejecting or cancelling (``false_alarm`` feeds detection).
DECISION_REASONS = ("false_alarm", "not_needed", "duplicate", "customer_declined", "out_of_contract",
                    "other")
SYSTEM_ACTORS = ("detection", "triage", "scheduler", "system")
#: Triage outcomes that keep an order proposed; recorded as the order's reason.
TRIAGE_OUTCOMES = ("needs_review", "rate_limited", "storm")

#: (from, to) -> the right a person needs for it (service_api.auth.RIGHTS).
TRANSITIONS: dict[tuple[str, str], str] = {
    ("proposed", "approved"): "triage",
    ("proposed", "rejected"): "triage",
    ("approved", "scheduled"): "schedule",
    ("scheduled", "approved"): "schedule",       # unscheduled for re-planning
    ("scheduled", "in_progress"): "start",
    ("in_progress", "completed"): "complete",
    **{(s, "on_hold"): "hold" for s in HOLD_FROM},
    **{("on_hold", s): "hold" for s in HOLD_FROM},
    **{(s, "cancelled"): "cancel" for s in LIVE},
}

#: Facts the system records that a person may not enter: a device reports a repair on an order
#: nobody scheduled (the technician was on site).
SYSTEM_TRANSITIONS = {("approved", "in_progress")}

_EVENT = {"proposed": "order.proposed", "approved": "order.approved", "rejected": "order.rejected",
          "scheduled": "order.scheduled", "in_progress": "order.started", "on_hold": "order.on_hold",
          "completed": "order.completed", "cancelled": "order.cancelled"}

#: Order columns a change may set (``detail`` is merged, scheduled_for/assignee live in it).
CHANGEABLE = ("priority", "risk", "predicted_failure_at", "predicted_failure_lo", "predicted_failure_hi",
              "predicted_mttr_h", "respond_by", "kind", "first_time_fix", "fleet_incident_id")
DETAIL_KEYS = ("scheduled_for", "assignee")


class OrderError(Exception):
    """A change that cannot be made; the API maps the subclasses to 404 / 409 / 422."""


class NotFound(OrderError):
    pass


class Conflict(OrderError):
    """Not possible from the order's current status."""


class Invalid(OrderError):
    """Possible, but the values are wrong (time before the last change, missing reason, ...)."""


class LiveOrderExists(Conflict):
    def __init__(self, order_id: int, asset_id: str, mode: str):
        super().__init__(f"asset {asset_id} already has live order {order_id} for {mode}")
        self.order_id = order_id


def can_move(current: str, new: str) -> bool:
    return (current, new) in TRANSITIONS


def right_needed(current: str, new: str) -> str | None:
    """The right needed to move an order from ``current`` to ``new``; None if not possible."""
    return TRANSITIONS.get((current, new))


def right_for(new: str) -> str:
    """The right needed to move any order to ``new`` (checked before whether it is possible)."""
    return {"approved": "triage", "rejected": "triage", "scheduled": "schedule", "in_progress": "start",
            "completed": "complete", "on_hold": "hold", "cancelled": "cancel"}[new]


def allowed_next(current: str) -> list[str]:
    return [new for (cur, new) in TRANSITIONS if cur == current]


def event_type(current: str | None, new: str) -> str:
    if current == "on_hold" and new != "cancelled":
        return "order.resumed"
    return _EVENT[new]


def live_statuses(conn) -> tuple[str, ...]:
    """The live statuses as the database defines them."""
    return tuple(r[0] for r in conn.execute(
        "SELECT status FROM order_statuses WHERE live ORDER BY position").fetchall())


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _jsonable(v: Any) -> Any:
    return _iso(v) if isinstance(v, datetime) else v


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _history(cur, order_id: int, at: datetime, from_status: str | None, to_status: str, actor: str,
             reason: str, note: str) -> None:
    cur.execute(
        """INSERT INTO service_order_history (order_id, at, from_status, to_status, actor, reason, note)
           VALUES (%s, %s, %s, %s, %s, %s, %s)""",
        (order_id, at, from_status, to_status, actor, reason, note))


def create(conn, *, asset_id: str, mode: str, kind: str, status: str, priority: int, opened_at: datetime,
           actor: str, reason: str = "opened", note: str = "", sla_tier: str | None = None,
           risk: float | None = None, predicted_failure_at: datetime | None = None,
           predicted_mttr_h: float | None = None, respond_by: datetime | None = None,
           detail: dict | None = None, predicted_failure_lo: datetime | None = None,
           predicted_failure_hi: datetime | None = None) -> int:
    """Open an order in ``status`` (``proposed`` or ``approved``); returns its id. A live order
    for the same asset and mode raises :class:`LiveOrderExists` (nothing written)."""
    if status not in ("proposed", "approved"):
        raise Invalid(f"an order opens proposed or approved, not {status}")
    with conn.cursor() as cur:
        try:
            with conn.transaction():
                cur.execute(
                    """INSERT INTO service_orders (asset_id, mode, kind, status, status_at, reason,
                           priority, sla_tier, risk, predicted_failure_at, predicted_mttr_h,
                           respond_by, opened_at, detail, predicted_failure_lo, predicted_failure_hi)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                       RETURNING order_id""",
                    (asset_id, mode, kind, status, opened_at, reason, priority, sla_tier, risk,
                     predicted_failure_at, predicted_mttr_h, respond_by, opened_at, Jsonb(detail or {}),
                     predicted_failure_lo, predicted_failure_hi))
        except errors.UniqueViolation:
            live = live_order(conn, asset_id, mode)
            raise LiveOrderExists(live["order_id"] if live else -1, asset_id, mode) from None
        order_id = cur.fetchone()[0]
        _history(cur, order_id, opened_at, None, status, actor, reason, note)
    emit(conn, _EVENT[status], order_id,
                {"asset_id": asset_id, "mode": mode, "kind": kind, "status": status, "at": _iso(opened_at),
                 "actor": actor, "reason": reason, "priority": priority, "risk": risk,
                 "predicted_failure_at": _jsonable(predicted_failure_at)})
    return order_id


def live_order(conn, asset_id: str, mode: str) -> dict | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM service_orders WHERE asset_id = %s AND mode = %s "
                    "AND status IN (SELECT status FROM order_statuses WHERE live)", (asset_id, mode))
        return cur.fetchone()


def transition(conn, order_id: int, to_status: str | None, *, actor: str, reason: str | None = None,
               note: str = "", at: datetime | None = None, changes: dict | None = None) -> dict:
    """Move order ``order_id`` to ``to_status`` (None: stay, only ``changes``) and/or apply
    ``changes`` (columns in :data:`CHANGEABLE`, ``scheduled_for``/``assignee`` into detail, a
    ``detail`` dict merged). One history row, one event. Returns the updated order row.

    Reasons: ``rejected``/``cancelled`` need one of :data:`DECISION_REASONS` (or ``repaired``,
    ``storm``, ``duplicate`` from the system); ``on_hold`` one of :data:`HOLD_REASONS`; resuming
    goes back to the status the order was held from."""
    changes = dict(changes or {})
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM service_orders WHERE order_id = %s FOR UPDATE", (order_id,))
        order = cur.fetchone()
        if order is None:
            raise NotFound(f"no service order {order_id}")
        current = order["status"]
        new = to_status or current
        cur.execute("SELECT greatest(max(at), %s) AS last FROM service_order_history WHERE order_id = %s",
                    (order["status_at"] or order["opened_at"], order_id))
        last = cur.fetchone()["last"]
        if at is None:
            at = _now()
        if at < last:
            if actor in SYSTEM_ACTORS or actor.startswith("device"):  # the system's clock: keep order
                at = last
            else:
                raise Invalid(f"'at' is before the order's last change ({last.isoformat()})")
        system = actor in SYSTEM_ACTORS or actor.startswith("device")
        if to_status is not None and to_status != current:
            if not can_move(current, to_status) and not (system and (current, to_status) in SYSTEM_TRANSITIONS):
                raise Conflict(f"order {order_id} is {current}; it cannot become {to_status} "
                               f"(allowed: {', '.join(allowed_next(current)) or 'none'})")
            if current == "on_hold" and to_status != "cancelled" and to_status != order["held_from"]:
                raise Conflict(f"order {order_id} was put on hold from {order['held_from']}; it resumes to that")
        elif current not in LIVE:
            raise Conflict(f"order {order_id} is {current}; it can no longer change")
        elif not changes and reason is None:
            raise Invalid("nothing to change")
        reason = reason or _default_reason(current, new, changes)
        if new in ("rejected", "cancelled") and reason in ("planner", "opened", None):
            raise Invalid(f"{new} needs a reason: one of {', '.join(DECISION_REASONS)}")
        if new == "on_hold" and current != "on_hold" and reason not in HOLD_REASONS:
            raise Invalid(f"on_hold needs a reason: one of {', '.join(HOLD_REASONS)}")
        detail = dict(changes.pop("detail", None) or {})
        for k in DETAIL_KEYS:
            if k in changes:
                v = changes.pop(k)
                detail[k] = _jsonable(v)
        unknown = set(changes) - set(CHANGEABLE)
        if unknown:
            raise Invalid(f"cannot change {', '.join(sorted(unknown))}")
        if new == "scheduled" and not (detail.get("scheduled_for") or order["detail"].get("scheduled_for")):
            raise Invalid("scheduling needs scheduled_for")
        if new == "completed" and changes.get("first_time_fix") is None and not system:
            raise Invalid("completing an order needs first_time_fix (true or false)")
        if "first_time_fix" in changes and new != "completed":
            raise Invalid("first_time_fix is only given when completing an order")
        sets = {k: v for k, v in changes.items()}
        moved = new != current
        if reason in TRIAGE_OUTCOMES:           # why a proposal is still waiting
            sets["reason"] = reason
        if moved:
            sets.update(status=new, status_at=at, reason=reason)
            if new in TERMINAL:
                sets["closed_at"] = at
            if new == "on_hold":
                sets["held_from"] = current
            elif current == "on_hold":
                sets["held_from"] = None
        cols = ", ".join(f"{k} = %({k})s" for k in sets)
        cur.execute(
            f"UPDATE service_orders SET {cols + ', ' if cols else ''}detail = detail || %(_detail)s "
            "WHERE order_id = %(_id)s RETURNING *",
            {**sets, "_detail": Jsonb(detail), "_id": order_id})
        updated = cur.fetchone()
        summary = "; ".join(f"{k}={_jsonable(v)}" for k, v in [*detail.items(), *changes.items()]
                            if v is not None and k != "first_time_fix")
        _history(cur, order_id, at, current, new, actor, reason,
                 "; ".join(x for x in (note.strip(), summary) if x))
    if moved:
        payload = {"asset_id": order["asset_id"], "mode": order["mode"], "kind": updated["kind"],
                   "from_status": current, "status": new, "at": _iso(at), "actor": actor, "reason": reason}
        if note.strip():
            payload["note"] = note.strip()
        emit(conn, event_type(current, new), order_id, payload)
    return updated


def _default_reason(current: str, new: str, changes: dict) -> str:
    if new == current:
        return "planning"
    if current == "on_hold":
        return "resumed"
    return "planner"


# -- detection and devices -------------------------------------------------------------------

@dataclass
class OrderProposal:
    """An order detection wants: a new one, or new evidence for the live one of the asset and mode."""

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


def open_or_update(conn: psycopg.Connection, proposals: list[OrderProposal], actor: str = "detection") -> list[int]:
    """Open an order per proposal, or escalate the live one for the same asset and mode (risk,
    predicted failure, priority and respond-by only ever more urgent; a failure report approves a
    proposed order). Predictive orders open ``proposed`` and go through :func:`orders.triage.triage`;
    corrective ones open ``approved``. Returns ids of new orders."""
    from orders import triage       # triage moves orders through this module

    opened = []
    for p in proposals:
        live = live_order(conn, p.asset_id, p.mode)
        if live is None:
            status = "proposed" if p.kind == "predictive" else "approved"
            try:
                oid = create(conn, asset_id=p.asset_id, mode=p.mode, kind=p.kind, status=status,
                             priority=p.priority, opened_at=p.opened_at, actor=actor,
                             note=f"{p.kind} order at risk {p.risk if p.risk is not None else 'n/a'}",
                             sla_tier=p.sla_tier, risk=p.risk, predicted_failure_at=p.predicted_failure_at,
                             predicted_mttr_h=p.predicted_mttr_h, respond_by=p.respond_by, detail=p.detail,
                             predicted_failure_lo=p.predicted_failure_lo, predicted_failure_hi=p.predicted_failure_hi)
            except LiveOrderExists:
                live = live_order(conn, p.asset_id, p.mode)
            else:
                opened.append(oid)
                if status == "proposed":
                    triage.triage(conn, oid)
                continue
        _escalate(conn, live, p, actor)
    return opened


def _escalate(conn, live: dict, p: OrderProposal, actor: str) -> None:
    changes: dict[str, Any] = {}
    if p.risk is not None and (live["risk"] is None or p.risk > live["risk"]):
        changes["risk"] = p.risk
    if p.predicted_failure_at is not None and (live["predicted_failure_at"] is None
                                               or p.predicted_failure_at < live["predicted_failure_at"]):
        changes["predicted_failure_at"] = p.predicted_failure_at
        if p.predicted_failure_lo is not None:
            changes.update(predicted_failure_lo=p.predicted_failure_lo, predicted_failure_hi=p.predicted_failure_hi)
    if p.predicted_mttr_h is not None and live["predicted_mttr_h"] is None:
        changes["predicted_mttr_h"] = p.predicted_mttr_h
    if p.priority < live["priority"]:
        changes["priority"] = p.priority
    if p.respond_by is not None and (live["respond_by"] is None or p.respond_by < live["respond_by"]):
        changes["respond_by"] = p.respond_by
    approve = live["status"] == "proposed" and p.kind == "corrective"
    if not changes and not approve:
        return
    changes["detail"] = {f"escalated_by_{p.kind}": _iso(p.opened_at)}
    note = "failure reported" if p.kind == "corrective" else f"new evidence, risk {p.risk}"
    transition(conn, live["order_id"], "approved" if approve else None, actor=actor, reason="escalated",
               note=note, at=p.opened_at, changes=changes)


def refresh_predictions(conn: psycopg.Connection, rows: list[tuple]) -> int:
    """Keep the live predictive orders of assets current with the failure predictor's latest
    output: ``rows`` of (asset_id, failure_at, failure_lo, failure_hi, {mode: probability of a
    failure within the horizon}). A forecast, not a decision: no history row, no event (detection
    calls it every predicted hour). Returns the number of orders updated."""
    if not rows:
        return 0
    cur = conn.execute(
        """UPDATE service_orders o SET predicted_failure_at = x.f, predicted_failure_lo = x.lo,
               predicted_failure_hi = x.hi,
               detail = o.detail || jsonb_strip_nulls(jsonb_build_object('p_fail', x.p -> o.mode))
           FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[], %s::timestamptz[], %s::jsonb[])
                AS x(a, f, lo, hi, p)
           WHERE o.asset_id = x.a AND o.kind = 'predictive'
             AND o.status IN (SELECT status FROM order_statuses WHERE live)""",
        ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
         [Jsonb(r[4] or {}) for r in rows]))
    return cur.rowcount


def new_repairs(conn: psycopg.Connection, after_id: int) -> list[tuple]:
    """Repairs recorded after ``after_id``: (id, asset_id, mode, finished_at, first_time_fix)."""
    return conn.execute(
        "SELECT id, asset_id, mode, finished_at, first_time_fix FROM repairs WHERE id > %s ORDER BY id",
        (after_id,)).fetchall()


def complete_repaired(conn, repair_id: int, asset_id: str, mode: str, finished_at: datetime,
                      actor: str = "detection") -> list[int]:
    """Complete the live order of the asset and mode that the repair fixed (opened before it),
    link the repair to it and give the repair the order's kind. The one place orders are closed
    by a repair: ingest calls it for a device's repair_finished event, detection for repairs
    recorded otherwise (backfill, imports); whichever comes second finds nothing left to do.

    The order walks the state machine at the repair's times: approved (if it was proposed; the
    repair shows the work was needed), resumed (if on hold), in_progress at the repair's start
    (the technician on site), completed at its finish; each step a history row by ``actor``.
    ``conn`` is a psycopg connection inside the caller's transaction."""
    if not hasattr(conn, "transaction"):         # a cursor: use its connection
        conn = conn.connection
    row = conn.execute("SELECT started_at, first_time_fix FROM repairs WHERE id = %s", (repair_id,)).fetchone()
    started = row[0] if row else finished_at
    live = live_order(conn, asset_id, mode)
    if live is None or live["opened_at"] > finished_at:
        return []
    oid = live["order_id"]
    note = f"repair {repair_id}"
    status = live["status"]
    if status == "proposed":
        transition(conn, oid, "approved", actor=actor, reason="repaired", note=note, at=started)
    elif status == "on_hold":
        transition(conn, oid, live["held_from"], actor=actor, reason="repaired", note=note, at=started)
        status = live["held_from"]
    if status != "in_progress":
        transition(conn, oid, "in_progress", actor=actor, reason="repaired", note=note, at=started)
    changes = {"first_time_fix": row[1]} if row and row[1] is not None else {}
    transition(conn, oid, "completed", actor=actor, reason="repaired", note=f"{note} finished",
               at=finished_at, changes=changes)
    conn.execute("UPDATE repairs SET order_id = %s, kind = %s WHERE id = %s AND order_id IS NULL",
                 (oid, live["kind"], repair_id))
    return [oid]


def complete_by_technician(conn, order_id: int, *, actor: str, at: datetime, first_time_fix: bool,
                           note: str = "", as_found: dict[str, str] | None = None) -> dict:
    """A technician completes an order in progress: the repair is recorded from the start of work
    (the latest move to in_progress) to ``at``, with the technician's first-time-fix answer and,
    when given, the as-found condition of the asset's failure modes (``as_found``: mode -> one of
    :data:`schemas.telemetry.AS_FOUND_GRADES`, any of the asset model's modes; stored in
    ``repairs.detail.as_found`` as a device's repair report is). (``at`` cannot precede the
    start: no change may precede the order's last one.)"""
    with conn.cursor() as cur:
        cur.execute("SELECT o.asset_id, o.mode, o.kind, o.opened_at, a.model_id FROM service_orders o "
                    "JOIN assets a USING (asset_id) WHERE o.order_id = %s", (order_id,))
        row = cur.fetchone()
        if row is None:
            raise NotFound(f"no service order {order_id}")
        if as_found is not None:
            cur.execute("SELECT mode FROM failure_modes WHERE model_id = %s", (row[4],))
            if (err := as_found_error(as_found, [r[0] for r in cur.fetchall()])) is not None:
                raise Invalid(err[1])
        cur.execute("SELECT max(at) FROM service_order_history WHERE order_id = %s AND to_status = 'in_progress'",
                    (order_id,))
        started = cur.fetchone()[0] or row[3]
    updated = transition(conn, order_id, "completed", actor=actor, at=at, note=note,
                         changes={"first_time_fix": first_time_fix})
    conn.execute(
        """INSERT INTO repairs (asset_id, mode, order_id, kind, started_at, finished_at, first_time_fix, detail)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (asset_id, started_at) DO UPDATE
           SET order_id = COALESCE(repairs.order_id, EXCLUDED.order_id),
               first_time_fix = EXCLUDED.first_time_fix, kind = EXCLUDED.kind,
               detail = repairs.detail || (EXCLUDED.detail - 'recorded_by')""",
        (row[0], row[1], order_id, row[2], started, at, first_time_fix,
         Jsonb({"recorded_by": actor, **({"as_found": as_found} if as_found is not None else {})})))
    return updated


__all__ = ["STATUSES", "LIVE", "TERMINAL", "TRANSITIONS", "OrderError", "NotFound", "Conflict", "Invalid",
           "LiveOrderExists", "OrderProposal", "create", "transition", "open_or_update", "complete_repaired",
           "complete_by_technician", "live_order", "new_repairs", "allowed_next", "right_for", "right_needed"]
