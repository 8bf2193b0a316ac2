"""Service figures a service manager reports, computed from what was recorded, never assumed.

- **First-time fix** (SQL function ``repair_outcomes(at)``, migration 0023): a repair fixed the
  fault on the first visit unless the technician said it did not or the same asset and failure
  mode needed another repair within 30 days. Judged once the technician said no, a repeat came,
  or 30 days have passed; the rate is fixed / judged over repairs finished in the window.
- **Repeat-repair rate**: judged repairs followed by another repair of the same asset and mode
  within 30 days / judged repairs.
- **Billing class** of an order: ``warranty`` if the asset's warranty covered the day it was
  opened, else ``contract`` if a service contract did, else ``billable``.
- **Renewal candidates**: contracts ending within ``days`` (default 90) of ``at`` with no
  follow-on contract, with the asset's availability over the last 365 days (from
  ``downtime``: 1 − down hours / exposure hours) and its SLA record over the contract (orders,
  restore met / breached, from :mod:`orders.sla`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from psycopg.rows import dict_row

from orders import sla

REPEAT_DAYS = 30

FIX_SQL = """
SELECT a.model_id, o.mode,
       count(*)::int AS repairs,
       count(o.first_time_fix)::int AS judged,
       count(*) FILTER (WHERE o.first_time_fix)::int AS fixed_first_time,
       count(*) FILTER (WHERE o.repeated)::int AS repeated,
       count(*) FILTER (WHERE o.technician_said IS NOT NULL)::int AS technician_answered
FROM repair_outcomes(%(at)s) o JOIN assets a ON a.asset_id = o.asset_id
WHERE o.finished_at >= %(from)s AND o.finished_at < %(to)s
  AND (%(model)s::text IS NULL OR a.model_id = %(model)s)
  AND (%(customer)s::text IS NULL OR a.customer_id = %(customer)s)
GROUP BY GROUPING SETS ((a.model_id, o.mode), (a.model_id), ())
ORDER BY a.model_id NULLS FIRST, o.mode NULLS FIRST
"""


def first_time_fix(conn, start: datetime, end: datetime, at: datetime, model: str | None = None,
                   customer: str | None = None) -> list[dict]:
    """Rows for the fleet (model and mode None), per model (mode None) and per model and mode:
    repairs, judged, fixed_first_time, repeated, first_time_fix_rate, repeat_rate."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(FIX_SQL, {"from": start, "to": end, "at": at, "model": model, "customer": customer})
        rows = cur.fetchall()
    for r in rows:
        j = r["judged"]
        r["first_time_fix_rate"] = r["fixed_first_time"] / j if j else None
        r["repeat_rate"] = r["repeated"] / j if j else None
    return rows


BILLING_SQL = """
SELECT o.kind,
       CASE WHEN a.warranty_end IS NOT NULL AND o.opened_at::date <= a.warranty_end THEN 'warranty'
            WHEN EXISTS (SELECT 1 FROM service_contracts c WHERE c.asset_id = o.asset_id
                         AND o.opened_at::date BETWEEN c.starts_on AND c.ends_on) THEN 'contract'
            ELSE 'billable' END AS billing,
       count(*)::int AS orders,
       count(*) FILTER (WHERE o.status = 'completed')::int AS completed
FROM service_orders o JOIN assets a ON a.asset_id = o.asset_id
WHERE o.opened_at >= %(from)s AND o.opened_at < %(to)s AND o.status NOT IN ('rejected', 'cancelled')
  AND (%(customer)s::text IS NULL OR a.customer_id = %(customer)s)
GROUP BY 1, 2 ORDER BY 2, 1
"""


def billing(conn, start: datetime, end: datetime, customer: str | None = None) -> list[dict]:
    """Orders (not rejected or cancelled) opened in [start, end) by kind and billing class."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(BILLING_SQL, {"from": start, "to": end, "customer": customer})
        return cur.fetchall()


RENEWAL_SQL = """
SELECT c.contract_id, c.asset_id, c.tier, c.starts_on, c.ends_on, a.model_id, a.customer_id, a.site_id,
       (c.ends_on - %(at)s::date) AS days_left,
       exp.h AS exposure_h,
       coalesce((SELECT sum(extract(epoch FROM least(coalesce(d.ended_at, %(at)s), %(at)s)
                                    - greatest(d.started_at, %(since)s)) / 3600)
                 FROM downtime d WHERE d.asset_id = c.asset_id AND d.started_at < %(at)s
                   AND coalesce(d.ended_at, %(at)s) > %(since)s), 0) AS downtime_h
FROM service_contracts c JOIN assets a ON a.asset_id = c.asset_id
CROSS JOIN LATERAL (SELECT extract(epoch FROM %(at)s - greatest(%(since)s, a.install_date::timestamptz)) / 3600 AS h) exp
WHERE c.ends_on >= %(at)s::date AND c.ends_on < %(at)s::date + %(days)s
  AND NOT EXISTS (SELECT 1 FROM service_contracts n WHERE n.asset_id = c.asset_id AND n.starts_on > c.ends_on - 1
                  AND n.contract_id <> c.contract_id)
  AND (%(customer)s::text IS NULL OR a.customer_id = %(customer)s)
ORDER BY c.ends_on, c.contract_id
LIMIT %(limit)s
"""


def renewal_candidates(conn, at: datetime, days: int = 90, customer: str | None = None,
                       limit: int = 200) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(RENEWAL_SQL, {"at": at, "since": at - timedelta(days=365), "days": days,
                                  "customer": customer, "limit": limit})
        rows = cur.fetchall()
    for r in rows:
        exp = float(r["exposure_h"] or 0.0)
        r["availability"] = 1.0 - float(r["downtime_h"]) / exp if exp > 0 else None
        clocks = sla.order_clocks(
            conn, "o.asset_id = %(asset)s AND o.sla_tier IS NOT NULL AND o.opened_at::date BETWEEN %(s)s AND %(e)s",
            {"asset": r["asset_id"], "s": r["starts_on"], "e": r["ends_on"]}, at, with_probability=False)
        states = [c.restore.state for c in clocks if c.restore is not None]
        r["orders"] = len(clocks)
        r["restore_met"] = states.count("met")
        r["restore_breached"] = states.count("breached")
        judged = r["restore_met"] + r["restore_breached"]
        r["restore_compliance"] = r["restore_met"] / judged if judged else None
    return rows
