"""The installed base: assets with model, site, customer, life cycle, warranty, contract tier,
latest health and open orders; one asset in depth; its telemetry."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status
from psycopg.rows import dict_row

from service_api.auth import Principal
from service_api.deps import CurrentUser, DbConn, scope, visible
from service_api.models import AssetDetail, AssetPublic, Page, TelemetrySeries
from service_api.params import ID_PATTERN, IdQuery, Limit, Offset, TimeQuery, resolve_window
from service_api.routes.service_orders import fetch_orders
from service_api.telemetry import read_series

router = APIRouter(prefix="/assets", tags=["assets"])

AssetId = Annotated[str, Path(min_length=1, max_length=128, pattern=ID_PATTERN)]

# One row per asset; the active contract is the most demanding one in force today. Written as
# grouped subqueries rather than per-asset LATERALs: the whole-fleet list hashes them once,
# and a single-asset lookup still gets the asset_id pushed down into each of them.
ASSET_SELECT = f"""
SELECT a.asset_id, a.serial, a.model_id, pm.name AS model_name, pm.category,
       a.customer_id, cu.name AS customer_name, a.site_id, s.name AS site_name, s.region,
       a.install_date, a.lifecycle_stage, a.warranty_end,
       COALESCE(a.warranty_end >= current_date, false) AS in_warranty,
       c.tier AS contract_tier, c.ends_on AS contract_ends_on,
       h.risk, h.health, h.worst_mode, h.rul_h, h.rul_lo_h, h.rul_hi_h, h.p_fail,
       h.updated_at AS health_updated_at,
       COALESCE(o.open_orders, 0) AS open_orders
FROM assets a
JOIN product_models pm ON pm.model_id = a.model_id
JOIN customers cu ON cu.customer_id = a.customer_id
JOIN sites s ON s.site_id = a.site_id
LEFT JOIN (
    SELECT DISTINCT ON (sc.asset_id) sc.asset_id, sc.tier, sc.ends_on
    FROM service_contracts sc JOIN sla_tiers st ON st.tier = sc.tier
    WHERE current_date BETWEEN sc.starts_on AND sc.ends_on
    ORDER BY sc.asset_id, st.rank) c ON c.asset_id = a.asset_id
LEFT JOIN (
    SELECT asset_id, max(risk) AS risk, min(health) AS health, min(rul_h) AS rul_h,
           (array_agg(rul_lo_h ORDER BY rul_h NULLS LAST))[1] AS rul_lo_h,
           (array_agg(rul_hi_h ORDER BY rul_h NULLS LAST))[1] AS rul_hi_h, max(p_fail) AS p_fail,
           max(updated_at) AS updated_at, (array_agg(mode ORDER BY risk DESC))[1] AS worst_mode
    FROM asset_health GROUP BY asset_id) h ON h.asset_id = a.asset_id
LEFT JOIN (
    SELECT asset_id, count(*)::int AS open_orders FROM service_orders
    WHERE status IN (SELECT status FROM order_statuses WHERE live) GROUP BY asset_id) o ON o.asset_id = a.asset_id
"""

SORTS = {
    "risk": "risk DESC NULLS LAST, asset_id",
    "rul": "rul_h NULLS LAST, asset_id",
    "asset_id": "asset_id",
    "install_date": "install_date, asset_id",
    "open_orders": "open_orders DESC, risk DESC NULLS LAST, asset_id",
}


@router.get("", response_model=Page[AssetPublic])
def list_assets(
    conn: DbConn,
    user: CurrentUser,
    model: IdQuery = None,
    site: IdQuery = None,
    customer: IdQuery = None,
    tier: IdQuery = None,
    lifecycle: Annotated[
        Literal["commissioning", "in_service", "end_of_life", "decommissioned"] | None, Query()
    ] = None,
    min_risk: Annotated[float | None, Query(ge=0, le=1)] = None,
    in_warranty: bool | None = None,
    with_open_orders: bool | None = None,
    sort: Literal["risk", "rul", "asset_id", "install_date", "open_orders"] = "risk",
    limit: Limit = 50,
    offset: Offset = 0,
):
    """The installed base, filtered; riskiest first by default."""
    customer = scope(user, customer)
    params = {
        "model": model, "site": site, "customer": customer, "tier": tier,
        "lifecycle": lifecycle, "min_risk": min_risk, "in_warranty": in_warranty,
        "with_open": with_open_orders, "limit": limit, "offset": offset,
    }
    where = """
WHERE (%(model)s::text IS NULL OR model_id = %(model)s)
  AND (%(site)s::text IS NULL OR site_id = %(site)s)
  AND (%(customer)s::text IS NULL OR customer_id = %(customer)s)
  AND (%(tier)s::text IS NULL OR contract_tier = %(tier)s)
  AND (%(lifecycle)s::text IS NULL OR lifecycle_stage = %(lifecycle)s)
  AND (%(min_risk)s::real IS NULL OR risk >= %(min_risk)s)
  AND (%(in_warranty)s::bool IS NULL OR in_warranty = %(in_warranty)s)
  AND (%(with_open)s::bool IS NULL OR (open_orders > 0) = %(with_open)s)
"""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"WITH base AS ({ASSET_SELECT}) SELECT *, count(*) OVER () AS total FROM base {where}"
            f" ORDER BY {SORTS[sort]} LIMIT %(limit)s OFFSET %(offset)s",
            params,
        )
        items = cur.fetchall()
        if items:
            count = items[0]["total"]
        else:
            cur.execute(f"WITH base AS ({ASSET_SELECT}) SELECT count(*) AS n FROM base {where}", params)
            count = cur.fetchone()["n"]
    return {"items": items, "count": count, "limit": limit, "offset": offset}


def _one_asset(cur, asset_id: str, user: Principal) -> dict:
    """The asset's row; 404 if there is none or ``user`` (a customer token) may not see it."""
    cur.execute(ASSET_SELECT + " WHERE a.asset_id = %s", (asset_id,))
    asset = cur.fetchone()
    if asset is None or not visible(user, asset["customer_id"]):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no asset {asset_id!r}")
    return asset


@router.get("/{asset_id}", response_model=AssetDetail)
def get_asset(
    conn: DbConn,
    user: CurrentUser,
    asset_id: AssetId,
    recent: Annotated[int, Query(ge=1, le=500, description="rows of each history list")] = 50,
):
    """One asset: health, risk and RUL per failure mode of its model, recent anomalies,
    service orders, downtime and repairs (newest first, ``recent`` of each)."""
    with conn.cursor(row_factory=dict_row) as cur:
        asset = _one_asset(cur, asset_id, user)
        p = {"asset": asset_id, "model": asset["model_id"], "n": recent}
        cur.execute("SELECT device_id, status FROM devices WHERE asset_id = %(asset)s", p)
        dev = cur.fetchone() or {}
        asset["device_id"], asset["device_status"] = dev.get("device_id"), dev.get("status")
        cur.execute(
            """SELECT position, name, unit, min_value, max_value FROM sensors
               WHERE model_id = %(model)s ORDER BY position""",
            p,
        )
        asset["sensors"] = cur.fetchall()
        cur.execute(
            """SELECT fm.mode, fm.description, fm.predictable, fm.mttr_h AS nominal_mttr_h,
                      h.health, h.risk, h.rul_h, h.rul_lo_h, h.rul_hi_h, h.p_fail, h.horizon_h,
                      h.predicted_at, h.updated_at, h.detail
               FROM failure_modes fm
               LEFT JOIN asset_health h ON h.asset_id = %(asset)s AND h.mode = fm.mode
               WHERE fm.model_id = %(model)s
               ORDER BY h.risk DESC NULLS LAST, fm.mode""",
            p,
        )
        asset["modes"] = cur.fetchall()
        cur.execute(
            """SELECT id, time, sensor, detector, score, detail FROM anomalies
               WHERE asset_id = %(asset)s ORDER BY time DESC LIMIT %(n)s""",
            p,
        )
        asset["anomalies"] = cur.fetchall()
        cur.execute(
            """SELECT id, mode, started_at, ended_at, planned,
                      extract(epoch FROM ended_at - started_at) / 3600.0 AS duration_h
               FROM downtime WHERE asset_id = %(asset)s ORDER BY started_at DESC LIMIT %(n)s""",
            p,
        )
        asset["downtime"] = cur.fetchall()
        cur.execute(
            """SELECT id, asset_id, mode, order_id, kind, started_at, finished_at, first_time_fix,
                      extract(epoch FROM finished_at - started_at) / 3600.0 AS duration_h
               FROM repairs WHERE asset_id = %(asset)s ORDER BY started_at DESC LIMIT %(n)s""",
            p,
        )
        asset["repairs"] = cur.fetchall()
    asset["orders"] = fetch_orders(
        conn, "WHERE o.asset_id = %(asset)s", p, " ORDER BY o.opened_at DESC LIMIT %(n)s"
    )
    return asset


@router.get("/{asset_id}/telemetry", response_model=TelemetrySeries, response_model_by_alias=True)
def get_telemetry(
    conn: DbConn,
    user: CurrentUser,
    asset_id: AssetId,
    sensor: Annotated[str, Query(min_length=1, max_length=64, pattern=ID_PATTERN)],
    from_: Annotated[TimeQuery, Query(alias="from")] = None,
    to: TimeQuery = None,
    resolution: Literal["auto", "raw", "1m", "1h", "1d"] = "auto",
    hours: Annotated[float, Query(gt=0, le=24 * 3660, description="window length when "
                                  "'from' is not given")] = 24.0,
):
    """One sensor of the asset over [from, to). ``to`` defaults to just after the latest
    reading and ``from`` to ``hours`` (default 24) before ``to``. ``auto`` resolution returns raw readings for windows up to 1 h,
    1-minute buckets up to 2 days, 1-hour buckets up to 120 days, daily buckets beyond; each
    point carries the bucket's mean, min, max and reading count (raw: the value, n = 1)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """SELECT d.device_id, s.position, s.unit, a.customer_id
               FROM assets a
               LEFT JOIN devices d ON d.asset_id = a.asset_id
               LEFT JOIN sensors s ON s.model_id = a.model_id AND s.name = %s
               WHERE a.asset_id = %s""",
            (sensor, asset_id),
        )
        row = cur.fetchone()
        if row is None or not visible(user, row["customer_id"]):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no asset {asset_id!r}")
        if row["position"] is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"asset {asset_id!r} has no sensor {sensor!r}"
            )
        if row["device_id"] is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"asset {asset_id!r} has no device")
        if to is None:
            cur.execute(
                "SELECT max(time) AS t, now() AS now FROM telemetry WHERE device_id = %s",
                (row["device_id"],),
            )
            r = cur.fetchone()
            latest = r["t"] + timedelta(milliseconds=1) if r["t"] else r["now"]
        else:
            latest = None
        start, end = resolve_window(from_, to, timedelta(hours=hours),
                                    latest or datetime.now().astimezone())
    series = read_series(conn, row["device_id"], int(row["position"]), start, end, resolution)
    return {
        "asset_id": asset_id, "device_id": row["device_id"], "sensor": sensor,
        "unit": row["unit"], "from": start, "to": end, **series,
    }
