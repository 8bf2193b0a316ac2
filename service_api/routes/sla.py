"""SLA standing per service contract tier and per customer, and open orders near their response
target. The clocks are :mod:`orders.sla`'s (tier calendars, pauses on hold, a predictive order's
restore target its predicted failure); this route counts them.

For each order with an SLA tier, opened in [from, to) and not rejected or cancelled, judged at
``at`` (default now) from its history up to then:

- response (restore) is *met* / *breached* when that clock says so, else *pending*;
- an order *complies* when both are met and is *breached* when either is;
  compliance % = complying / (complying + breached) × 100 (pending orders are not judged yet);
  response (restore) compliance % = met / (met + breached) × 100 for that target alone;
- first-time-fix rate = share of completed orders whose repair fixed the fault on the first
  visit (``orders/figures.py``: not if the technician said so or the same asset and mode needed
  another repair within 30 days; the technician's answer while the repair is not judged yet).

At risk: live orders not yet responded whose response deadline falls before ``at`` +
``horizon_h`` (overdue ones included and flagged), soonest first. (Orders by probability of
missing the restore target: ``GET /sla/at-risk``.)
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated

from fastapi import APIRouter, Query

from orders import sla as clocks
from service_api.deps import CurrentUser, DbConn, scope
from service_api.models import SlaReport
from service_api.params import IdQuery, TimeQuery, resolve_window, utc

router = APIRouter(prefix="/sla", tags=["sla"])

FIXED_SQL = """
SELECT o.order_id,
       CASE WHEN o.first_time_fix IS FALSE OR bool_or(ro.first_time_fix IS FALSE) THEN false
            ELSE coalesce(bool_and(ro.first_time_fix), o.first_time_fix) END AS fixed
FROM service_orders o LEFT JOIN repair_outcomes(%(at)s) ro ON ro.order_id = o.order_id
WHERE o.order_id = ANY(%(ids)s) AND o.status = 'completed' AND o.closed_at <= %(at)s
GROUP BY o.order_id, o.first_time_fix
"""


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 3) if whole else None


def _group(key: str, items: list[tuple[str, str, bool | None]]) -> dict:
    resp = [r for r, _, _ in items]
    rest = [s for _, s, _ in items]
    complying = sum(r == "met" and s == "met" for r, s, _ in items)
    breached = sum(r == "breached" or s == "breached" for r, s, _ in items)
    fixed = [f for _, _, f in items if f is not None]
    return {
        "key": key,
        "orders": len(items),
        "responded_in_time": resp.count("met"),
        "response_breached": resp.count("breached"),
        "restored_in_time": rest.count("met"),
        "restore_breached": rest.count("breached"),
        "pending": len(items) - complying - breached,
        "response_compliance_pct": _pct(resp.count("met"), resp.count("met") + resp.count("breached")),
        "restore_compliance_pct": _pct(rest.count("met"), rest.count("met") + rest.count("breached")),
        "compliance_pct": _pct(complying, complying + breached),
        "first_time_fix_rate": sum(fixed) / len(fixed) if fixed else None,
    }


@router.get("", response_model=SlaReport, response_model_by_alias=True)
def sla(
    conn: DbConn,
    user: CurrentUser,
    from_: Annotated[TimeQuery, Query(alias="from")] = None,
    to: TimeQuery = None,
    at: TimeQuery = None,
    tier: IdQuery = None,
    customer: IdQuery = None,
    horizon_h: Annotated[float, Query(gt=0, le=24 * 30)] = 8.0,
    limit: Annotated[int, Query(ge=1, le=1000, description="at-risk orders listed")] = 100,
):
    """SLA compliance per tier (most demanding first) and per customer for orders opened in [from, to) (default the
    90 days to now), judged at ``at`` (default now), and the live orders whose response target
    is within ``horizon_h`` hours (or past). Definitions: ``service_api/routes/sla.py``."""
    now = datetime.now(timezone.utc)
    start, end = resolve_window(from_, to, timedelta(days=90), now)
    at = utc(at, "at") or now
    p = {"from": start, "to": end, "tier": tier, "customer": scope(user, customer)}
    rows = clocks.order_clocks(
        conn, "o.sla_tier IS NOT NULL AND o.status NOT IN ('cancelled', 'rejected') "
              "AND o.opened_at >= %(from)s AND o.opened_at < %(to)s "
              "AND (%(tier)s::text IS NULL OR o.sla_tier = %(tier)s) "
              "AND (%(customer)s::text IS NULL OR a.customer_id = %(customer)s)",
        p, at, with_probability=False)
    fixed = dict(conn.execute(FIXED_SQL, {"at": at, "ids": [c.order_id for c in rows]}).fetchall()) if rows else {}
    by_tier: dict[str, list] = {}
    by_customer: dict[str, list] = {}
    for c in rows:
        item = (c.response.state if c.response else "pending", c.restore.state if c.restore else "pending",
                fixed.get(c.order_id))
        by_tier.setdefault(c.tier, []).append(item)
        by_customer.setdefault(c.detail["customer_id"], []).append(item)
    rank = {t: r["rank"] for t, r in clocks.tiers(conn).items()}
    risky = []
    for c in clocks.order_clocks(
            conn, "o.sla_tier IS NOT NULL AND o.status IN ('proposed', 'approved', 'scheduled') "
                  "AND (%(tier)s::text IS NULL OR o.sla_tier = %(tier)s) "
                  "AND (%(customer)s::text IS NULL OR a.customer_id = %(customer)s)",
            p, at, with_probability=False):
        r = c.response
        if (r is None or r.deadline is None or r.stopped_at is not None or c.status == "on_hold"
                or r.deadline > at + timedelta(hours=horizon_h)):
            continue
        risky.append({"order_id": c.order_id, "asset_id": c.detail["asset_id"],
                      "customer_id": c.detail["customer_id"], "sla_tier": c.tier, "status": c.status,
                      "priority": c.detail["priority"], "respond_by": r.deadline,
                      "hours_left": (r.deadline - at).total_seconds() / 3600.0,
                      "overdue": r.deadline < at})
    risky.sort(key=lambda o: (o["respond_by"], o["priority"], o["order_id"]))
    return {
        "from": start, "to": end, "at": at,
        "by_tier": sorted((_group(k, v) for k, v in by_tier.items()), key=lambda g: rank.get(g["key"], 0)),
        "by_customer": sorted((_group(k, v) for k, v in by_customer.items()), key=lambda g: g["key"]),
        "at_risk": risky[:limit],
    }
