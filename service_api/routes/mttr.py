"""Mean time to repair: actual, from recorded repairs, and predicted, for live orders.

- Actual MTTR of a group (model and failure mode, or model) over the window =
  Σ (finished_at − started_at) / n over the repairs that finished in [from, to), in hours:
  hands-on time from the start of work to the asset restored. With it: the median and 90th
  percentile repair time and the first-time-fix rate (share of those repairs, judged now, that
  fixed the fault on the first visit: ``orders/figures.py``).
- Predicted MTTR of a live order = the order's ``predicted_mttr_h`` (from detection's model);
  ``expected_mttr_h`` falls back to the actual MTTR of its model and mode in the window, then to
  the failure mode's nominal ``mttr_h``.
- ``model_mttr_h`` / ``mttr_lo_h`` / ``mttr_hi_h``: the repair-time model in force
  (:mod:`detection.mttr`) for the order now, its predictive median and conformal interval of
  coverage ``mttr_coverage`` (80%), and ``mttr_basis``: ``group`` (calibrated on this model
  and mode's own repairs), ``mode`` (on the mode's across models), ``pooled``, or ``manual`` (few repairs: centred on the nominal MTTR,
  wide).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from psycopg.rows import dict_row

from detection.mttr import intervals
from service_api.deps import CurrentUser, DbConn
from service_api.models import MttrReport
from service_api.params import IdQuery, TimeQuery, resolve_window

router = APIRouter(prefix="/mttr", tags=["reliability"])

ACTUAL_SQL = """
SELECT g.model_id, g.mode, g.by_model, g.repairs, g.mttr_h, g.median_h, g.p90_h,
       g.first_time_fix_rate, fm.mttr_h AS nominal_mttr_h
FROM (
    SELECT a.model_id, r.mode, GROUPING(r.mode) = 1 AS by_model, count(*)::int AS repairs,
           avg(x.h) AS mttr_h,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY x.h) AS median_h,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY x.h) AS p90_h,
           avg(ro.first_time_fix::int) AS first_time_fix_rate
    FROM repairs r
    JOIN assets a ON a.asset_id = r.asset_id
    LEFT JOIN repair_outcomes(now()) ro ON ro.repair_id = r.id
    CROSS JOIN LATERAL (SELECT (extract(epoch FROM r.finished_at - r.started_at) / 3600.0)::float8 AS h) x
    WHERE r.finished_at >= %(from)s AND r.finished_at < %(to)s
      AND (%(model)s::text IS NULL OR a.model_id = %(model)s)
      AND (%(mode)s::text IS NULL OR r.mode = %(mode)s)
      AND (%(kind)s::text IS NULL OR r.kind = %(kind)s)
      AND (%(customer)s::text IS NULL OR a.customer_id = %(customer)s)
    GROUP BY GROUPING SETS ((a.model_id, r.mode), (a.model_id))
) g
LEFT JOIN failure_modes fm ON NOT g.by_model AND fm.model_id = g.model_id AND fm.mode = g.mode
ORDER BY g.model_id, g.mode NULLS FIRST
"""

PREDICTED_SQL = f"""
SELECT o.order_id, o.asset_id, a.model_id, o.mode, o.kind, o.status, o.priority, o.predicted_mttr_h,
       fm.mttr_h AS nominal_mttr_h, a.site_id, s.region
FROM service_orders o
JOIN assets a ON a.asset_id = o.asset_id
LEFT JOIN sites s ON s.site_id = a.site_id
LEFT JOIN failure_modes fm ON fm.model_id = a.model_id AND fm.mode = o.mode
WHERE o.status IN (SELECT status FROM order_statuses WHERE live)
  AND (%(model)s::text IS NULL OR a.model_id = %(model)s)
  AND (%(mode)s::text IS NULL OR o.mode = %(mode)s)
  AND (%(customer)s::text IS NULL OR a.customer_id = %(customer)s)
ORDER BY o.priority, o.respond_by NULLS LAST, o.order_id
LIMIT %(limit)s
"""


@router.get("", response_model=MttrReport, response_model_by_alias=True)
def mttr(
    conn: DbConn,
    user: CurrentUser,
    from_: Annotated[TimeQuery, Query(alias="from")] = None,
    to: TimeQuery = None,
    model: IdQuery = None,
    mode: IdQuery = None,
    kind: Literal["predictive", "preventive", "corrective"] | None = None,
    limit: Annotated[int, Query(ge=1, le=2000, description="live orders listed")] = 200,
):
    """Actual MTTR per model and failure mode and per model (repairs finished in [from, to),
    default the last 365 days), and the predicted MTTR of live orders. MTTR =
    Σ(finished_at − started_at) / n; see ``service_api/routes/mttr.py``."""
    start, end = resolve_window(from_, to, timedelta(days=365), datetime.now(timezone.utc))
    p = {"from": start, "to": end, "model": model, "mode": mode, "kind": kind, "limit": limit,
         "customer": user.customer_id}  # a customer token: its own repairs and orders only
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(ACTUAL_SQL, p)
        groups = cur.fetchall()
        cur.execute(PREDICTED_SQL, p)
        orders = cur.fetchall()
    actual = {(g["model_id"], g["mode"]): g["mttr_h"] for g in groups if not g["by_model"]}
    predicted = intervals(conn, [{k: o[k] for k in ("model_id", "mode", "kind", "site_id", "region")}
                                 for o in orders])
    for o, p in zip(orders, predicted):
        o.update(model_mttr_h=p["median_h"], mttr_lo_h=p["lo_h"], mttr_hi_h=p["hi_h"],
                 mttr_coverage=p["coverage"], mttr_basis=p["basis"])
        o["actual_mttr_h"] = actual.get((o["model_id"], o["mode"]))
        o["expected_mttr_h"] = next(
            (v for v in (o["predicted_mttr_h"], o["actual_mttr_h"], o["nominal_mttr_h"])
             if v is not None), None,
        )
    return {
        "from": start, "to": end,
        "by_mode": [g for g in groups if not g["by_model"]],
        "by_model": [g for g in groups if g["by_model"]],
        "open_orders": orders,
    }
