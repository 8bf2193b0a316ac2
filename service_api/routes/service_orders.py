"""Service orders: the planner queue, one order with its history, status transitions and
planning changes, and planner-opened preventive/corrective orders."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status
from psycopg.rows import dict_row

from orders import state
from service_api.deps import CurrentUser, DbConn, requires, scope, visible
from service_api.models import (
    OrderDecision,
    OrderHistoryPublic,
    OrderKind,
    OrderRejection,
    OrderStatus,
    OrderVocabulary,
    Page,
    ServiceOrderCreate,
    ServiceOrderDetail,
    ServiceOrderPublic,
    ServiceOrderUpdate,
)
from service_api.params import IdQuery, Limit, Offset, utc

router = APIRouter(prefix="/service-orders", tags=["service orders"])

OrderId = Annotated[int, Path(ge=1, le=2**63 - 1)]

ORDER_SELECT = """
SELECT o.order_id, o.asset_id, o.mode, o.kind, o.status, o.priority, o.sla_tier, o.risk,
       o.predicted_failure_at, o.predicted_failure_lo, o.predicted_failure_hi, o.predicted_mttr_h, o.respond_by,
       o.opened_at, o.closed_at, o.first_time_fix, o.reason, o.status_at, o.fleet_incident_id, o.detail,
       a.model_id, a.site_id, a.customer_id
FROM service_orders o JOIN assets a ON a.asset_id = o.asset_id
"""

FUTURE_SLACK = timedelta(minutes=5)


def _parse_time(v: Any) -> datetime | None:
    if not isinstance(v, str):
        return None
    try:
        t = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def order_public(row: dict) -> dict:
    """A service_orders row (joined with its asset) as a ServiceOrderPublic dict; scheduling
    (``scheduled_for``, ``assignee``) lives in ``detail``."""
    detail = row.get("detail") or {}
    row["scheduled_for"] = _parse_time(detail.get("scheduled_for"))
    assignee = detail.get("assignee")
    row["assignee"] = assignee if isinstance(assignee, str) else None
    return row


def fetch_orders(conn, where: str, params: dict, tail: str = "") -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(ORDER_SELECT + where + tail, params)
        return [order_public(r) for r in cur.fetchall()]


@router.get("", response_model=Page[ServiceOrderPublic])
def list_orders(
    conn: DbConn,
    user: CurrentUser,
    status_: Annotated[list[OrderStatus] | None, Query(alias="status")] = None,
    kind: Annotated[list[OrderKind] | None, Query()] = None,
    priority: Annotated[list[Annotated[int, Query(ge=1, le=5)]] | None, Query()] = None,
    model: IdQuery = None,
    site: IdQuery = None,
    customer: IdQuery = None,
    tier: IdQuery = None,
    asset: IdQuery = None,
    mode: IdQuery = None,
    limit: Limit = 50,
    offset: Offset = 0,
):
    """Orders matching every given filter (repeat ``status``/``kind``/``priority`` for several
    values), most urgent first: by priority (1 = most urgent), then respond-by, then age."""
    params = {
        "status": status_, "kind": kind, "priority": priority, "model": model, "site": site,
        "customer": scope(user, customer), "tier": tier, "asset": asset, "mode": mode,
        "limit": limit, "offset": offset,
    }
    where = """
WHERE (%(status)s::text[] IS NULL OR o.status = ANY(%(status)s::text[]))
  AND (%(kind)s::text[] IS NULL OR o.kind = ANY(%(kind)s::text[]))
  AND (%(priority)s::int[] IS NULL OR o.priority = ANY(%(priority)s::int[]))
  AND (%(model)s::text IS NULL OR a.model_id = %(model)s)
  AND (%(site)s::text IS NULL OR a.site_id = %(site)s)
  AND (%(customer)s::text IS NULL OR a.customer_id = %(customer)s)
  AND (%(tier)s::text IS NULL OR o.sla_tier = %(tier)s)
  AND (%(asset)s::text IS NULL OR o.asset_id = %(asset)s)
  AND (%(mode)s::text IS NULL OR o.mode = %(mode)s)
"""
    items = fetch_orders(
        conn, where, params,
        "ORDER BY o.priority, o.respond_by NULLS LAST, o.opened_at, o.order_id "
        "LIMIT %(limit)s OFFSET %(offset)s",
    )
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM service_orders o JOIN assets a ON a.asset_id = o.asset_id"
            + where,
            params,
        )
        count = cur.fetchone()[0]
    return {"items": items, "count": count, "limit": limit, "offset": offset}


@router.get("/vocabulary", response_model=OrderVocabulary)
def vocabulary(conn: DbConn, user: CurrentUser):
    """The order statuses (which are live), the possible transitions with the right each needs,
    and the reason codes, as the database and :mod:`orders.state` define them."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT status, live, description FROM order_statuses ORDER BY position")
        statuses = cur.fetchall()
        cur.execute("SELECT reason, description FROM order_reasons ORDER BY reason")
        reasons = cur.fetchall()
    return {"statuses": statuses, "reasons": reasons,
            "transitions": [{"from_status": a, "to_status": b, "right": r}
                            for (a, b), r in state.TRANSITIONS.items()],
            "decision_reasons": list(state.DECISION_REASONS), "hold_reasons": list(state.HOLD_REASONS)}


def _order_detail(conn, order_id: int) -> dict:
    rows = fetch_orders(conn, "WHERE o.order_id = %(id)s", {"id": order_id})
    if not rows:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no service order {order_id}")
    order = rows[0]
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """SELECT at, from_status, to_status, actor, reason, note FROM service_order_history
               WHERE order_id = %s ORDER BY at, id""",
            (order_id,),
        )
        order["history"] = cur.fetchall()
        cur.execute(
            """SELECT id, asset_id, mode, order_id, kind, started_at, finished_at, first_time_fix,
                      detail->'as_found' AS as_found, extract(epoch FROM finished_at - started_at) / 3600.0 AS duration_h
               FROM repairs WHERE order_id = %s ORDER BY started_at""",
            (order_id,),
        )
        order["repairs"] = cur.fetchall()
    return order


@router.get("/{order_id}", response_model=ServiceOrderDetail)
def get_order(conn: DbConn, user: CurrentUser, order_id: OrderId):
    """One order with its status history and the repairs recorded against it."""
    order = _order_detail(conn, order_id)
    if not visible(user, order["customer_id"]):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no service order {order_id}")
    return order


def _unprocessable(msg: str) -> HTTPException:
    return HTTPException(422, msg)


def _http(exc: state.OrderError) -> HTTPException:
    code = {state.NotFound: 404, state.Conflict: 409, state.LiveOrderExists: 409}.get(type(exc), 422)
    return HTTPException(code, str(exc))


def _when(at: datetime | None) -> datetime:
    now = datetime.now(timezone.utc)
    at = utc(at, "at") or now
    if at > now + FUTURE_SLACK:
        raise _unprocessable("'at' is in the future")
    return at


def _require(user, right: str) -> None:
    if not user.can(right):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {user.role!r} may not {right} service orders")


def _change(conn, user, order_id: int, new_status: str | None, *, at: datetime, reason: str | None,
            note: str, changes: dict, as_found: dict | None = None) -> dict:
    """Rights first (403), then whether the change is possible (409), then the values (422);
    the change itself is :func:`orders.state.transition` (one history row, one event)."""
    if new_status is not None:
        _require(user, state.right_for(new_status))
    if "scheduled_for" in changes or "priority" in changes:
        _require(user, "schedule")
    if "assignee" in changes:
        _require(user, "assign")
    try:
        with conn.transaction():
            if new_status == "completed":
                state.complete_by_technician(conn, order_id, actor=user.actor, at=at, note=note,
                                             first_time_fix=changes.get("first_time_fix"), as_found=as_found)
            else:
                state.transition(conn, order_id, new_status, actor=user.actor, reason=reason, note=note,
                                 at=at, changes=changes)
    except state.OrderError as exc:
        raise _http(exc) from None
    return _order_detail(conn, order_id)


@router.patch("/{order_id}", response_model=ServiceOrderDetail)
def update_order(conn: DbConn, user: CurrentUser, order_id: OrderId, body: ServiceOrderUpdate):
    """Move an order along its life cycle and/or change its planning.

    - ``status``: ``approved`` / ``rejected`` (planner, from proposed), ``scheduled`` (planner;
      needs ``scheduled_for`` here or already set), ``approved`` again from scheduled
      (unscheduled for re-planning), ``in_progress`` (technician on site: the SLA response time),
      ``on_hold`` (planner or technician, with ``reason`` waiting_customer or waiting_parts; the
      SLA clocks pause) and back to the status it was held from, ``completed`` (technician;
      needs ``first_time_fix``; records the repair from the start of work to ``at``: the SLA
      restore time; optional ``as_found``: the grade of each of the asset's failure modes as
      found, stored with the repair), ``cancelled`` (planner, from any live status, with a ``reason``).
    - ``reason``: a reason code (``GET /service-orders/reasons``); rejecting or cancelling
      with ``false_alarm`` tells detection to re-baseline that asset and mode.
    - ``scheduled_for``, ``assignee``, ``priority``: planner, on a live order.
    - ``at``: when it happened (default now); not in the future, not before the order's last
      change.

    Every accepted change adds one history row. An impossible transition is a 409.
    """
    changes = body.model_dump(exclude_unset=True, exclude={"note", "at", "status", "reason", "as_found"})
    changes = {k: v for k, v in changes.items() if v is not None or k == "first_time_fix"}
    if body.status is None and not changes:
        raise _unprocessable("nothing to change: give status, scheduled_for, assignee or priority")
    if body.as_found is not None and body.status != "completed":
        raise _unprocessable("as_found is only given when completing an order")
    at = _when(body.at)
    if "scheduled_for" in changes:
        changes["scheduled_for"] = utc(body.scheduled_for, "scheduled_for")
    return _change(conn, user, order_id, body.status, at=at, reason=body.reason, note=body.note.strip(),
                   changes=changes, as_found=body.as_found)


@router.post("/{order_id}/approve", response_model=ServiceOrderDetail)
def approve_order(conn: DbConn, user: CurrentUser, order_id: OrderId, body: OrderDecision):
    """A planner approves a proposed order (it becomes work a scheduler may plan)."""
    return _change(conn, user, order_id, "approved", at=_when(body.at), reason="planner",
                   note=body.note.strip(), changes={})


@router.post("/{order_id}/reject", response_model=ServiceOrderDetail)
def reject_order(conn: DbConn, user: CurrentUser, order_id: OrderId, body: OrderRejection):
    """A planner rejects a proposed order with a reason code (``false_alarm``: detection
    re-baselines that asset and mode and the order counts against the model's precision) and
    text."""
    return _change(conn, user, order_id, "rejected", at=_when(body.at), reason=body.reason,
                   note=body.note.strip(), changes={})


@router.post("/{order_id}/resume", response_model=ServiceOrderDetail)
def resume_order(conn: DbConn, user: CurrentUser, order_id: OrderId, body: OrderDecision):
    """End an order's hold: it returns to the status it was held from."""
    row = conn.execute("SELECT status, held_from FROM service_orders WHERE order_id = %s", (order_id,)).fetchone()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no service order {order_id}")
    if row[0] != "on_hold":
        _require(user, "hold")
        raise HTTPException(status.HTTP_409_CONFLICT, f"order {order_id} is {row[0]}, not on hold")
    return _change(conn, user, order_id, row[1], at=_when(body.at), reason="resumed",
                   note=body.note.strip(), changes={})


@router.get("/{order_id}/history", response_model=list[OrderHistoryPublic])
def order_history(conn: DbConn, user: CurrentUser, order_id: OrderId):
    """Every change of the order, oldest first: from and to status, actor, reason, note, time."""
    return get_order(conn, user, order_id)["history"]


@router.post(
    "",
    response_model=ServiceOrderDetail,
    status_code=status.HTTP_201_CREATED,
    dependencies=[requires("create_order")],
)
def create_order(conn: DbConn, user: CurrentUser, body: ServiceOrderCreate):
    """Open a preventive or corrective order (it opens approved). Its SLA tier is the asset's
    active contract's; ``respond_by`` defaults to ``opened_at`` plus the tier's response target.
    One live order per asset and failure mode: a second is a 409."""
    now = datetime.now(timezone.utc)
    opened_at = utc(body.opened_at, "opened_at") or now
    if opened_at > now + FUTURE_SLACK:
        raise _unprocessable("'opened_at' is in the future")
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """SELECT a.asset_id, fm.mode, fm.mttr_h, c.tier, t.response_h
               FROM assets a
               LEFT JOIN failure_modes fm ON fm.model_id = a.model_id AND fm.mode = %(mode)s
               LEFT JOIN LATERAL (
                   SELECT sc.tier FROM service_contracts sc JOIN sla_tiers st USING (tier)
                   WHERE sc.asset_id = a.asset_id
                     AND %(at)s::date BETWEEN sc.starts_on AND sc.ends_on
                   ORDER BY st.rank LIMIT 1) c ON true
               LEFT JOIN sla_tiers t ON t.tier = c.tier
               WHERE a.asset_id = %(asset)s""",
            {"asset": body.asset_id, "mode": body.mode, "at": opened_at},
        )
        row = cur.fetchone()
        if row is None:
            raise _unprocessable(f"no asset {body.asset_id!r}")
        if row["mode"] is None:
            raise _unprocessable(f"{body.mode!r} is not a failure mode of this asset's model")
        respond_by = utc(body.respond_by, "respond_by")
        if respond_by is None and row["response_h"] is not None:
            respond_by = opened_at + timedelta(hours=float(row["response_h"]))
        detail: dict[str, Any] = {"opened_by": user.actor}
        if body.scheduled_for is not None:
            detail["scheduled_for"] = iso(utc(body.scheduled_for, "scheduled_for"))
        if body.assignee is not None:
            detail["assignee"] = body.assignee
        try:
            order_id = state.create(
                conn, asset_id=body.asset_id, mode=body.mode, kind=body.kind, status="approved",
                priority=body.priority, opened_at=opened_at, actor=user.actor, note=body.note.strip(),
                sla_tier=row["tier"], respond_by=respond_by, detail=detail)
        except state.OrderError as exc:
            raise _http(exc) from None
    return _order_detail(conn, order_id)
