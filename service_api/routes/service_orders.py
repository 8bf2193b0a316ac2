"""Service orders: the planner queue, one order with its history, status transitions and
planning changes, and planner-opened preventive/corrective orders."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status
from psycopg import errors
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from service_api.deps import CurrentUser, DbConn, requires, scope, visible
from service_api.models import (
    OrderKind,
    OrderStatus,
    Page,
    ServiceOrderCreate,
    ServiceOrderDetail,
    ServiceOrderPublic,
    ServiceOrderUpdate,
)
from service_api.params import IdQuery, Limit, Offset, utc
from service_api.workflow import LIVE, allowed_next, right_for, transition_right

router = APIRouter(prefix="/service-orders", tags=["service orders"])

OrderId = Annotated[int, Path(ge=1, le=2**63 - 1)]

ORDER_SELECT = """
SELECT o.order_id, o.asset_id, o.mode, o.kind, o.status, o.priority, o.sla_tier, o.risk,
       o.predicted_failure_at, o.predicted_failure_lo, o.predicted_failure_hi, o.predicted_mttr_h, o.respond_by, o.opened_at, o.closed_at,
       o.first_time_fix, o.detail, a.model_id, a.site_id, a.customer_id
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


def _order_detail(conn, order_id: int) -> dict:
    rows = fetch_orders(conn, "WHERE o.order_id = %(id)s", {"id": order_id})
    if not rows:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no service order {order_id}")
    order = rows[0]
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """SELECT at, status, actor, note FROM service_order_history
               WHERE order_id = %s ORDER BY at, id""",
            (order_id,),
        )
        order["history"] = cur.fetchall()
        cur.execute(
            """SELECT id, asset_id, mode, order_id, kind, started_at, finished_at, first_time_fix,
                      extract(epoch FROM finished_at - started_at) / 3600.0 AS duration_h
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


@router.patch("/{order_id}", response_model=ServiceOrderDetail)
def update_order(conn: DbConn, user: CurrentUser, order_id: OrderId, body: ServiceOrderUpdate):
    """Move an order along its life cycle and/or change its planning.

    - ``status``: ``scheduled`` (planner; needs ``scheduled_for`` here or already set),
      ``in_progress`` (technician on site: the SLA response time), ``completed`` (technician;
      needs ``first_time_fix``; records the repair from the start of work to ``at``: the SLA
      restore time), ``cancelled`` (planner, from open or scheduled).
    - ``scheduled_for``, ``assignee``, ``priority``: planner, on a live order.
    - ``at``: when it happened (default now); not in the future, not before the order opened
      or its last recorded change.

    Every accepted change adds one history row. An impossible transition is a 409.
    """
    changes = body.model_dump(exclude_unset=True, exclude={"note", "at"})
    changes = {k: v for k, v in changes.items() if v is not None or k == "first_time_fix"}
    if not any(k in changes for k in ("status", "scheduled_for", "assignee", "priority")):
        raise _unprocessable("nothing to change: give status, scheduled_for, assignee or priority")
    now = datetime.now(timezone.utc)
    at = utc(body.at, "at") or now
    if at > now + FUTURE_SLACK:
        raise _unprocessable("'at' is in the future")
    new_status = body.status
    if body.first_time_fix is not None and new_status != "completed":
        raise _unprocessable("first_time_fix is only given when completing an order")

    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT status, opened_at, asset_id, mode, kind, detail FROM service_orders "
            "WHERE order_id = %s FOR UPDATE",
            (order_id,),
        )
        order = cur.fetchone()
        if order is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no service order {order_id}")
        current = order["status"]
        cur.execute(
            "SELECT greatest(max(at), %s) AS last FROM service_order_history WHERE order_id = %s",
            (order["opened_at"], order_id),
        )
        last = cur.fetchone()["last"]
        if at < last:
            raise _unprocessable(f"'at' is before the order's last change ({last.isoformat()})")

        # Rights first (403), then whether the change is possible (409), then the values (422).
        needed = []
        if new_status is not None:
            needed.append(right_for(new_status))
        if "scheduled_for" in changes or "priority" in changes:
            needed.append("schedule")
        if "assignee" in changes:
            needed.append("assign")
        for right in needed:
            if not user.can(right):
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN,
                    f"role {user.role!r} may not {right} service orders",
                )
        if new_status is not None and transition_right(current, new_status) is None:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"order {order_id} is {current}; it cannot become {new_status} "
                f"(allowed: {', '.join(allowed_next(current)) or 'none'})",
            )
        if new_status is None and current not in LIVE:
            raise HTTPException(
                status.HTTP_409_CONFLICT, f"order {order_id} is {current}; it can no longer change"
            )

        detail: dict[str, Any] = {}
        if "scheduled_for" in changes:
            sf = utc(body.scheduled_for, "scheduled_for")
            detail["scheduled_for"] = iso(sf)
        if "assignee" in changes:
            detail["assignee"] = body.assignee
        if new_status == "scheduled" and not (
            "scheduled_for" in detail or (order["detail"] or {}).get("scheduled_for")
        ):
            raise _unprocessable("scheduling needs scheduled_for")

        closed_at = None
        if new_status == "completed":
            if body.first_time_fix is None:
                raise _unprocessable("completing an order needs first_time_fix (true or false)")
            cur.execute(
                """SELECT max(at) AS started FROM service_order_history
                   WHERE order_id = %s AND status = 'in_progress'""",
                (order_id,),
            )
            started = cur.fetchone()["started"] or order["opened_at"]
            if at < started:
                raise _unprocessable(f"'at' is before work started ({started})")
            closed_at = at
            cur.execute(
                """INSERT INTO repairs (asset_id, mode, order_id, kind, started_at, finished_at,
                                        first_time_fix, detail)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (asset_id, started_at) DO UPDATE
                   SET order_id = COALESCE(repairs.order_id, EXCLUDED.order_id),
                       first_time_fix = EXCLUDED.first_time_fix, kind = EXCLUDED.kind""",
                (
                    order["asset_id"], order["mode"], order_id, order["kind"], started, at,
                    body.first_time_fix, Jsonb({"recorded_by": user.actor}),
                ),
            )
        elif new_status == "cancelled":
            closed_at = at

        cur.execute(
            """UPDATE service_orders SET
                   status = COALESCE(%(status)s, status),
                   priority = COALESCE(%(priority)s, priority),
                   detail = detail || %(detail)s,
                   closed_at = COALESCE(%(closed_at)s, closed_at),
                   first_time_fix = COALESCE(%(ftf)s, first_time_fix)
               WHERE order_id = %(id)s""",
            {
                "status": new_status, "priority": changes.get("priority"), "detail": Jsonb(detail),
                "closed_at": closed_at, "ftf": body.first_time_fix, "id": order_id,
            },
        )
        summary = ", ".join(
            f"{k}={v}" for k, v in [*detail.items(), ("priority", changes.get("priority"))]
            if v is not None
        )
        note = "; ".join(x for x in (body.note.strip(), summary) if x)
        cur.execute(
            """INSERT INTO service_order_history (order_id, at, status, actor, note)
               VALUES (%s, %s, %s, %s, %s)""",
            (order_id, at, new_status or current, user.actor, note),
        )
    return _order_detail(conn, order_id)


@router.post(
    "",
    response_model=ServiceOrderDetail,
    status_code=status.HTTP_201_CREATED,
    dependencies=[requires("create_order")],
)
def create_order(conn: DbConn, user: CurrentUser, body: ServiceOrderCreate):
    """Open a preventive or corrective order. Its SLA tier is the asset's active contract's;
    ``respond_by`` defaults to ``opened_at`` plus the tier's response target. One live order per
    asset and failure mode: a second is a 409."""
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
            with conn.transaction():
                cur.execute(
                    """INSERT INTO service_orders (asset_id, mode, kind, priority, sla_tier,
                           predicted_mttr_h, respond_by, opened_at, detail)
                       VALUES (%s, %s, %s, %s, %s, NULL, %s, %s, %s) RETURNING order_id""",
                    (
                        body.asset_id, body.mode, body.kind, body.priority, row["tier"],
                        respond_by, opened_at, Jsonb(detail),
                    ),
                )
        except errors.UniqueViolation:
            cur.execute(
                f"SELECT order_id FROM service_orders WHERE asset_id = %s AND mode = %s "
                f"AND status IN {LIVE!r}",
                (body.asset_id, body.mode),
            )
            live = cur.fetchone()
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"asset {body.asset_id} already has live order {live and live['order_id']} "
                f"for {body.mode}",
            ) from None
        order_id = cur.fetchone()["order_id"]
        cur.execute(
            """INSERT INTO service_order_history (order_id, at, status, actor, note)
               VALUES (%s, %s, 'open', %s, %s)""",
            (order_id, opened_at, user.actor, body.note.strip()),
        )
    return _order_detail(conn, order_id)
