"""Honest service figures (definitions: ``orders/figures.py`` and ``orders/feedback.py``):
first-time fix and repeat repairs judged from what happened after each repair, orders by
billing class, precision of predictive orders per model and mode, and contract renewal
candidates with their availability and SLA record."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated

from fastapi import APIRouter, Query

from orders import feedback, figures
from service_api.deps import CurrentUser, DbConn, scope
from service_api.models import RenewalCandidate, ServiceFigures
from service_api.params import IdQuery, TimeQuery, resolve_window, utc

router = APIRouter(prefix="/service-figures", tags=["reliability"])


@router.get("", response_model=ServiceFigures, response_model_by_alias=True)
def service_figures(
    conn: DbConn,
    user: CurrentUser,
    from_: Annotated[TimeQuery, Query(alias="from")] = None,
    to: TimeQuery = None,
    at: TimeQuery = None,
    model: IdQuery = None,
    customer: IdQuery = None,
):
    """First-time fix and repeat-repair rate (repairs finished in [from, to), judged at ``at``),
    orders by kind and billing class, and the precision of predictive orders (opened in the
    window) per model and mode. Default window: the 90 days to now."""
    now = datetime.now(timezone.utc)
    start, end = resolve_window(from_, to, timedelta(days=90), now)
    at = utc(at, "at") or now
    cust = scope(user, customer)
    return {"from": start, "to": end, "at": at,
            "first_time_fix": figures.first_time_fix(conn, start, end, at, model=model, customer=cust),
            "billing": figures.billing(conn, start, end, customer=cust),
            "precision": feedback.precision(conn, start, end, model=model, customer=cust)}


@router.get("/renewals", response_model=list[RenewalCandidate])
def renewals(
    conn: DbConn,
    user: CurrentUser,
    at: TimeQuery = None,
    days: Annotated[int, Query(ge=1, le=730)] = 90,
    customer: IdQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
):
    """Contracts ending within ``days`` of ``at`` (default now) without a follow-on contract,
    soonest first, with the asset's availability over the last 365 days and its restore SLA
    record over the contract."""
    at = utc(at, "at") or datetime.now(timezone.utc)
    return figures.renewal_candidates(conn, at, days=days, customer=scope(user, customer), limit=limit)
