"""SLA standing per service contract tier and per customer, and open orders at risk.

For each order with an SLA tier, opened in [from, to) and not cancelled, judged at ``at``
(default now):

- response target ``R`` = the order's ``respond_by``, else ``opened_at`` + the tier's
  ``response_h``; restore target ``S`` = ``opened_at`` + the tier's ``restore_h``;
- responded at = first time the order went ``in_progress`` (technician on site), else its
  ``closed_at`` if completed; restored at = ``closed_at`` of a completed order;
- response is *met* if responded at ≤ R, *breached* if responded at > R or not responded and
  ``at`` > R, else *pending*; the same for restore against S;
- an order *complies* when both are met and is *breached* when either is;
  compliance % = complying / (complying + breached) × 100 (pending orders are not judged yet);
  response (restore) compliance % = met / (met + breached) × 100 for that target alone;
- first-time-fix rate = share of completed orders fixed on the first visit.

At risk: live orders not yet responded whose response target falls before ``at`` +
``horizon_h`` (overdue ones included and flagged), soonest first.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated

from fastapi import APIRouter, Query
from psycopg.rows import dict_row

from service_api.deps import CurrentUser, DbConn, scope
from service_api.models import SlaReport
from service_api.params import IdQuery, TimeQuery, resolve_window, utc

router = APIRouter(prefix="/sla", tags=["sla"])

JUDGED = """
WITH o AS (
    SELECT o.order_id, o.status, o.sla_tier, a.customer_id, o.first_time_fix,
           COALESCE(o.respond_by, o.opened_at + t.response_h * interval '1 hour') AS r_target,
           o.opened_at + t.restore_h * interval '1 hour' AS s_target,
           COALESCE(
               (SELECT min(h.at) FROM service_order_history h
                WHERE h.order_id = o.order_id AND h.status = 'in_progress'),
               CASE WHEN o.status = 'completed' THEN o.closed_at END) AS responded_at,
           CASE WHEN o.status = 'completed' THEN o.closed_at END AS restored_at
    FROM service_orders o
    JOIN assets a ON a.asset_id = o.asset_id
    JOIN sla_tiers t ON t.tier = o.sla_tier
    WHERE o.status <> 'cancelled' AND o.opened_at >= %(from)s AND o.opened_at < %(to)s
      AND (%(tier)s::text IS NULL OR o.sla_tier = %(tier)s)
      AND (%(customer)s::text IS NULL OR a.customer_id = %(customer)s)
),
j AS (
    SELECT o.*,
           CASE WHEN responded_at IS NOT NULL THEN
                    CASE WHEN responded_at <= r_target THEN 'met' ELSE 'breached' END
                WHEN %(at)s > r_target THEN 'breached' ELSE 'pending' END AS response,
           CASE WHEN restored_at IS NOT NULL THEN
                    CASE WHEN restored_at <= s_target THEN 'met' ELSE 'breached' END
                WHEN %(at)s > s_target THEN 'breached' ELSE 'pending' END AS restore
    FROM o
)
SELECT sla_tier, customer_id, GROUPING(sla_tier) = 0 AS by_tier,
       count(*)::int AS orders,
       count(*) FILTER (WHERE response = 'met')::int AS responded_in_time,
       count(*) FILTER (WHERE response = 'breached')::int AS response_breached,
       count(*) FILTER (WHERE restore = 'met')::int AS restored_in_time,
       count(*) FILTER (WHERE restore = 'breached')::int AS restore_breached,
       count(*) FILTER (WHERE response = 'met' AND restore = 'met')::int AS complying,
       count(*) FILTER (WHERE response = 'breached' OR restore = 'breached')::int AS breached,
       avg(first_time_fix::int) FILTER (WHERE status = 'completed') AS first_time_fix_rate
FROM j
GROUP BY GROUPING SETS ((sla_tier), (customer_id))
"""

AT_RISK = """
SELECT o.order_id, o.asset_id, a.customer_id, o.sla_tier, o.status, o.priority,
       COALESCE(o.respond_by, o.opened_at + t.response_h * interval '1 hour') AS respond_by
FROM service_orders o
JOIN assets a ON a.asset_id = o.asset_id
JOIN sla_tiers t ON t.tier = o.sla_tier
WHERE o.status IN ('open', 'scheduled')
  AND COALESCE(o.respond_by, o.opened_at + t.response_h * interval '1 hour')
      <= %(at)s + %(horizon)s * interval '1 hour'
  AND (%(tier)s::text IS NULL OR o.sla_tier = %(tier)s)
  AND (%(customer)s::text IS NULL OR a.customer_id = %(customer)s)
ORDER BY 7, o.priority, o.order_id
LIMIT %(limit)s
"""


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 3) if whole else None


def _group(row: dict, key: str) -> dict:
    return {
        "key": row[key],
        "orders": row["orders"],
        "responded_in_time": row["responded_in_time"],
        "response_breached": row["response_breached"],
        "restored_in_time": row["restored_in_time"],
        "restore_breached": row["restore_breached"],
        "pending": row["orders"] - row["complying"] - row["breached"],
        "response_compliance_pct": _pct(
            row["responded_in_time"], row["responded_in_time"] + row["response_breached"]
        ),
        "restore_compliance_pct": _pct(
            row["restored_in_time"], row["restored_in_time"] + row["restore_breached"]
        ),
        "compliance_pct": _pct(row["complying"], row["complying"] + row["breached"]),
        "first_time_fix_rate": row["first_time_fix_rate"],
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
    p = {"from": start, "to": end, "at": at, "tier": tier, "customer": scope(user, customer),
         "horizon": horizon_h, "limit": limit}
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(JUDGED, p)
        rows = cur.fetchall()
        cur.execute(AT_RISK, p)
        risky = cur.fetchall()
        cur.execute("SELECT tier, rank FROM sla_tiers")
        rank = {r["tier"]: r["rank"] for r in cur.fetchall()}
    for r in risky:
        r["hours_left"] = (r["respond_by"] - at).total_seconds() / 3600.0
        r["overdue"] = r["hours_left"] < 0
    return {
        "from": start, "to": end, "at": at,
        "by_tier": sorted((_group(r, "sla_tier") for r in rows if r["by_tier"]),
                          key=lambda g: rank.get(g["key"], 0)),
        "by_customer": sorted((_group(r, "customer_id") for r in rows if not r["by_tier"]),
                              key=lambda g: g["key"]),
        "at_risk": risky,
    }
