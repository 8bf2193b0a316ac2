"""Uptime and availability of the installed base over a window, from ``downtime``.

For each asset not decommissioned, over the window [from, to) cut to start no earlier than its
install date:

- exposure ``T`` = hours from max(from, install_date) to ``to``;
- downtime ``D`` = hours of the union of its downtime intervals clipped to the window (an
  open interval, ``ended_at`` NULL, runs to ``to``); planned downtime counts unless
  ``include_planned=false``, and overlapping intervals are counted once;
- uptime ``U = T - D``; availability ``A = U / T``;
- failures ``N`` = unplanned downtime events that started in the window;
- MTBF = ``U / N`` (hours of operation per failure; null when N = 0);
- MTTR = ``D_u / N`` where ``D_u`` is the unplanned part of ``D`` (mean time to restore).

A group (model, site, customer, fleet) sums its assets: ``A = ΣU / ΣT``, ``MTBF = ΣU / ΣN``,
``MTTR = ΣD_u / ΣN``, so long-installed assets weigh more than new ones.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from psycopg.rows import dict_row

from service_api.deps import CurrentUser, DbConn, scope
from service_api.models import UptimeReport
from service_api.params import IdQuery, TimeQuery, resolve_window

router = APIRouter(prefix="/uptime", tags=["reliability"])

GROUP_KEYS = {"asset": "asset_id", "model": "model_id", "site": "site_id", "customer": "customer_id"}

UPTIME_SQL = """
WITH a AS (
    SELECT a.asset_id, a.model_id, a.site_id, a.customer_id,
           greatest(%(from)s::timestamptz, a.install_date::timestamp AT TIME ZONE 'UTC') AS s,
           %(to)s::timestamptz AS e
    FROM assets a
    WHERE a.lifecycle_stage <> 'decommissioned'
      AND (%(model)s::text IS NULL OR a.model_id = %(model)s)
      AND (%(site)s::text IS NULL OR a.site_id = %(site)s)
      AND (%(customer)s::text IS NULL OR a.customer_id = %(customer)s)
      AND (%(asset)s::text IS NULL OR a.asset_id = %(asset)s)
),
per_asset AS (
    SELECT a.*, extract(epoch FROM a.e - a.s) / 3600.0 AS t_h,
           COALESCE((SELECT sum(extract(epoch FROM upper(r) - lower(r)))
                     FROM unnest(dd.all_r) r), 0) / 3600.0 AS down_h,
           COALESCE((SELECT sum(extract(epoch FROM upper(r) - lower(r)))
                     FROM unnest(dd.unplanned_r) r), 0) / 3600.0 AS unplanned_h,
           COALESCE(dd.failures, 0) AS failures
    FROM a
    LEFT JOIN LATERAL (
        -- one pass over the asset's downtime rows that overlap its window: the union of the
        -- clipped intervals (all counted / unplanned only) and the failures that began in it
        SELECT range_agg(x.r) FILTER (WHERE %(planned)s OR NOT d.planned) AS all_r,
               range_agg(x.r) FILTER (WHERE NOT d.planned) AS unplanned_r,
               count(*) FILTER (WHERE NOT d.planned AND d.started_at >= a.s) AS failures
        FROM downtime d
        CROSS JOIN LATERAL (SELECT tstzrange(greatest(d.started_at, a.s),
                                             least(COALESCE(d.ended_at, a.e), a.e)) AS r) x
        WHERE d.asset_id = a.asset_id AND d.started_at < a.e
          AND COALESCE(d.ended_at, 'infinity') > a.s) dd ON true
    WHERE a.s < a.e
)
SELECT {key} AS key, GROUPING({key}) AS is_total, count(*)::int AS assets,
       sum(t_h) AS exposure_h, sum(down_h) AS downtime_h, sum(t_h - down_h) AS uptime_h,
       sum(t_h - down_h) / NULLIF(sum(t_h), 0) AS availability,
       sum(failures)::int AS failures,
       sum(t_h - down_h) / NULLIF(sum(failures), 0) AS mtbf_h,
       sum(unplanned_h) / NULLIF(sum(failures), 0) AS mttr_h
FROM per_asset
GROUP BY GROUPING SETS (({key}), ())
ORDER BY is_total DESC, availability NULLS LAST, key
LIMIT %(limit)s
"""


@router.get("", response_model=UptimeReport, response_model_by_alias=True)
def uptime(
    conn: DbConn,
    user: CurrentUser,
    from_: Annotated[TimeQuery, Query(alias="from")] = None,
    to: TimeQuery = None,
    group_by: Literal["asset", "model", "site", "customer"] = "model",
    include_planned: bool = True,
    model: IdQuery = None,
    site: IdQuery = None,
    customer: IdQuery = None,
    asset: IdQuery = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
):
    """Availability, uptime, downtime hours, failures, MTBF and MTTR per asset, model, site or
    customer (worst availability first) and for the whole selection (``fleet``), over
    [from, to) (default: the 30 days to now). Formulas: see the module docstring in
    ``service_api/routes/uptime.py``: A = (T - D) / T, MTBF = U / N, MTTR = D_u / N."""
    start, end = resolve_window(from_, to, timedelta(days=30), datetime.now(timezone.utc))
    key = GROUP_KEYS[group_by]
    customer = scope(user, customer)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            UPTIME_SQL.format(key=key),
            {
                "from": start, "to": end, "model": model, "site": site, "customer": customer,
                "asset": asset, "planned": include_planned, "limit": limit + 1,
            },
        )
        rows = cur.fetchall()
    empty = {"key": None, "assets": 0, "exposure_h": 0.0, "downtime_h": 0.0, "uptime_h": 0.0,
             "availability": None, "failures": 0, "mtbf_h": None, "mttr_h": None}
    fleet = next((r for r in rows if r["is_total"] and r["assets"]), empty)
    fleet["key"] = None
    return {
        "from": start, "to": end, "group_by": group_by, "include_planned": include_planned,
        "fleet": fleet, "rows": [r for r in rows if not r["is_total"]][:limit],
    }
