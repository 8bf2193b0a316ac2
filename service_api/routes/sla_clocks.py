"""SLA clocks and breach probability of orders (definitions: ``orders/sla.py``): the at-risk
list sorted by the probability that the order's restore misses its deadline, the clocks of
matching orders, and one order's clocks with its repair-time interval."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from orders import sla
from service_api.deps import CurrentUser, DbConn, scope, visible
from service_api.models import OrderSlaList, OrderSlaPublic
from service_api.params import IdQuery, TimeQuery, utc

router = APIRouter(prefix="/sla", tags=["sla"])


def _public(c: sla.OrderClocks) -> dict:
    d = {**c.detail, "order_id": c.order_id, "status": c.status, "sla_tier": c.tier,
         "response": vars(c.response) if c.response else None, "restore": vars(c.restore) if c.restore else None,
         "breach_probability": c.breach_probability, "arrival": c.arrival,
         "repair_median_h": c.repair_median_h, "repair_source": c.repair_source,
         "repair_lo_h": c.repair_lo_h, "repair_hi_h": c.repair_hi_h}
    return d


@router.get("/at-risk", response_model=OrderSlaList)
def at_risk(
    conn: DbConn,
    user: CurrentUser,
    at: TimeQuery = None,
    tier: IdQuery = None,
    customer: IdQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
):
    """Live orders with a contract tier, most likely to breach their restore target first:
    breach probability = P(restore after the deadline) from the planned visit (or now + the
    tier's expected wait), travel, and the repair-time distribution."""
    at = utc(at, "at") or datetime.now(timezone.utc)
    rows = sla.at_risk(conn, now=at, limit=limit, tier=tier, customer=scope(user, customer))
    return {"at": at, "items": [_public(c) for c in rows]}


@router.get("/clocks", response_model=OrderSlaList)
def clocks(
    conn: DbConn,
    user: CurrentUser,
    at: TimeQuery = None,
    state: Annotated[str | None, Query(pattern="^(not_started|in_progress|nearing_breach|breached|met|paused|cancelled)$",
                                       description="only orders with a clock in this state")] = None,
    tier: IdQuery = None,
    customer: IdQuery = None,
    live: bool = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
):
    """Response and restore clocks of orders with a tier (live ones by default) at ``at``."""
    at = utc(at, "at") or datetime.now(timezone.utc)
    where = ["o.sla_tier IS NOT NULL"]
    if live:
        where.append("o.status IN (SELECT status FROM order_statuses WHERE live)")
    if tier:
        where.append("o.sla_tier = %(tier)s")
    cust = scope(user, customer)
    if cust:
        where.append("a.customer_id = %(customer)s")
    rows = sla.order_clocks(conn, " AND ".join(where), {"tier": tier, "customer": cust}, at)
    if state:
        rows = [c for c in rows if any(k is not None and k.state == state for k in (c.response, c.restore))]
    rows.sort(key=lambda c: (c.restore.deadline if c.restore and c.restore.deadline else at))
    return {"at": at, "items": [_public(c) for c in rows[:limit]]}


@router.get("/orders/{order_id}", response_model=OrderSlaPublic)
def order_sla(conn: DbConn, user: CurrentUser, order_id: int, at: TimeQuery = None):
    """One order's clocks, breach probability and repair-time interval (10-90 %)."""
    at = utc(at, "at") or datetime.now(timezone.utc)
    rows = sla.order_clocks(conn, "o.order_id = %(id)s", {"id": order_id}, at)
    if not rows or not visible(user, rows[0].detail["customer_id"]):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no service order {order_id}")
    return _public(rows[0])
