"""What the platform predicts for one asset and the evidence behind it: per failure mode the
predicted time to failure with its 10th-90th percentile interval and the probability of a
failure within the predictor's horizon (written by detection into ``asset_health``), the
signature detection looks for (learned from history, or the manufacturer's directions), the
alarm level at which it opens an order (learned from history, or the service's default), the
order rule that opens an order from the predicted probability of failure (when ``prognos train``
chose one for the product model: ``order_rules``), and the anomalies since the asset's last
repair: which sensors, since when, each one's time for marking on the telemetry chart."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from detection.prediction import order_rules
from service_api.deps import CurrentUser, DbConn
from service_api.routes.assets import AssetId, _one_asset

router = APIRouter(prefix="/assets", tags=["assets"])


class ModePrediction(BaseModel):
    mode: str
    predictable: bool
    risk: float | None = Field(description="detection's evidence for the mode, 0-1 (orders open at the threshold)")
    rul_h: float | None = Field(description="predicted hours to failure from predicted_at")
    rul_lo_h: float | None = Field(description="10th percentile")
    rul_hi_h: float | None = Field(description="90th percentile (at the predictor's cap: at least)")
    p_fail: float | None = Field(description="probability of a failure of this mode within horizon_h")
    horizon_h: float | None
    predicted_at: datetime | None
    failure_at: datetime | None = Field(description="predicted_at + rul_h")
    failure_lo: datetime | None
    failure_hi: datetime | None
    signature: dict[str, float] = Field(description="sensor -> signed weight detection matches anomalies against")
    signature_source: str = Field(description="'learned' (from failures in the history) or 'manufacturer' (directions only)")
    learned_from: int | None = Field(description="failures the learned signature comes from")
    alarm_level: float | None = Field(None, description="evidence at which detection opens an order for the mode, "
                                                        "learned from history (None: the service's default)")
    alarm_level_source: str = Field("default", description="'learned' (from failures in the history) or 'default'")
    alarm_level_from: int | None = Field(None, description="failures in the history the level was chosen on")


class SensorEvidence(BaseModel):
    sensor: str
    anomalies: int
    first: datetime
    last: datetime
    max_abs_z: float | None


class AnomalyMark(BaseModel):
    time: datetime
    sensor: str | None
    z: float | None
    score: float


class OrderRuleInfo(BaseModel):
    rule: str = Field(description="when the predicted probability of failure opens a predictive order, "
                                  "in words (rows are the service's hourly predictions)")
    name: str
    threshold: float = Field(description="p_fail (within the predictor's horizon) the rule orders at")
    failures: int = Field(description="failures of a predictable mode in the history it was chosen on")
    chosen_at: datetime
    held_out_recall: float | None = Field(None, description="held-out share of failures caught within the horizon "
                                                            "when as many orders are placed as there were failures")
    held_out_precision: float | None = Field(None, description="held-out share of its orders at the threshold "
                                                               "followed by a failure")


class AssetPrediction(BaseModel):
    asset_id: str
    model_id: str
    since: datetime | None = Field(description="first anomaly since the last repair (None: none)")
    last_repair_at: datetime | None
    modes: list[ModePrediction]
    sensors: list[SensorEvidence] = Field(description="anomalous sensors since the last repair, most first")
    anomalies: list[AnomalyMark] = Field(description="anomalies since the last repair, newest first")
    orders: list[dict[str, Any]] = Field(description="live orders of the asset with their predicted failure interval")
    order_rule: OrderRuleInfo | None = Field(None, description="the product model's learned order rule (None: "
                                                               "predictive orders come from detection's evidence only)")


@router.get("/{asset_id}/prediction", response_model=AssetPrediction)
def get_prediction(
    conn: DbConn,
    user: CurrentUser,
    asset_id: AssetId,
    limit: Annotated[int, Query(ge=1, le=2000, description="anomalies listed at most")] = 500,
):
    """The predicted failure of each mode of the asset and the evidence behind it."""
    with conn.cursor(row_factory=dict_row) as cur:
        asset = _one_asset(cur, asset_id, user)
        p = {"asset": asset_id, "model": asset["model_id"], "n": limit}
        cur.execute("SELECT max(finished_at) AS t FROM repairs WHERE asset_id = %(asset)s", p)
        p["since"] = cur.fetchone()["t"]
        cur.execute(
            """SELECT fm.mode, fm.predictable, h.risk, h.rul_h, h.rul_lo_h, h.rul_hi_h, h.p_fail, h.horizon_h,
                      h.predicted_at,
                      h.predicted_at + make_interval(secs => h.rul_h * 3600) AS failure_at,
                      h.predicted_at + make_interval(secs => h.rul_lo_h * 3600) AS failure_lo,
                      h.predicted_at + make_interval(secs => h.rul_hi_h * 3600) AS failure_hi,
                      ls.signature AS learned, ls.events AS learned_from, fm.signature AS manufacturer,
                      coalesce((ls.detail ->> 'used')::boolean, false) AS used,
                      (al.levels -> fm.mode ->> 'level')::real AS level,
                      (al.levels -> fm.mode ->> 'failures')::int AS level_from,
                      coalesce((al.levels -> fm.mode ->> 'learned')::boolean, false) AS level_learned
               FROM failure_modes fm
               LEFT JOIN asset_health h ON h.asset_id = %(asset)s AND h.mode = fm.mode
               LEFT JOIN learned_signatures ls ON ls.model_id = fm.model_id AND ls.mode = fm.mode
               LEFT JOIN alarm_levels al ON al.model_id = fm.model_id
               WHERE fm.model_id = %(model)s
               ORDER BY h.p_fail DESC NULLS LAST, h.risk DESC NULLS LAST, fm.mode""", p)
        modes = []
        for m in cur.fetchall():
            learned = m.pop("learned")
            manufacturer = m.pop("manufacturer") or {}
            use = m.pop("used")            # detection's rule, recorded when it was learned
            level, level_from, level_learned = m.pop("level"), m.pop("level_from"), m.pop("level_learned")
            modes.append({**m, "signature": learned if use else manufacturer,
                          "signature_source": "learned" if use else "manufacturer",
                          "alarm_level": level if level_learned else None,
                          "alarm_level_source": "learned" if level_learned else "default",
                          "alarm_level_from": level_from})
        cur.execute(
            """SELECT sensor, count(*) AS anomalies, min(time) AS first, max(time) AS last,
                      max(abs((detail ->> 'z')::real)) AS max_abs_z
               FROM anomalies WHERE asset_id = %(asset)s AND sensor IS NOT NULL
                 AND (%(since)s::timestamptz IS NULL OR time >= %(since)s)
               GROUP BY sensor ORDER BY count(*) DESC, sensor""", p)
        sensors = cur.fetchall()
        cur.execute(
            """SELECT time, sensor, (detail ->> 'z')::real AS z, score FROM anomalies
               WHERE asset_id = %(asset)s AND (%(since)s::timestamptz IS NULL OR time >= %(since)s)
               ORDER BY time DESC LIMIT %(n)s""", p)
        anomalies = cur.fetchall()
        cur.execute(
            """SELECT order_id, mode, kind, status, risk, opened_at, predicted_failure_at,
                      predicted_failure_lo, predicted_failure_hi, detail
               FROM service_orders WHERE asset_id = %(asset)s AND closed_at IS NULL
               ORDER BY opened_at DESC""", p)
        orders = cur.fetchall()
    return {"asset_id": asset_id, "model_id": asset["model_id"],
            "since": min((s["first"] for s in sensors), default=None), "last_repair_at": p["since"],
            "modes": modes, "sensors": sensors, "anomalies": anomalies, "orders": orders,
            "order_rule": _order_rule(conn, asset["model_id"])}


def _order_rule(conn, model_id: str) -> dict | None:
    try:
        stored = order_rules.load(conn, model_id)
    except ValueError:      # detection logs the bad row and orders from evidence alone; so does this page
        return None
    if stored is None:
        return None
    h = stored.held_out
    return {"rule": stored.rule.describe("h"), "name": stored.name, "threshold": stored.rule.threshold,
            "failures": stored.failures, "chosen_at": stored.chosen_at,
            "held_out_recall": h.get("recall_h_at_budget"), "held_out_precision": h.get("precision")}
