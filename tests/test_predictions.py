"""The trained predictor's output reaches the planner: detection writes each asset's predicted
time to failure with its 10th-90th percentile interval and the probability of failure within
the horizon into asset_health, keeps the live predictive orders' predicted failure time and
interval current, and the API serves both with the evidence behind them (real TimescaleDB, the
service API in-process)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import psycopg
import pytest

from orders.state import open_or_update
from detection.prediction.store import load_latest
from detection.service import DetectionService, ServiceConfig
from detection.train_cli import main as train_main
from tests.detection_fixtures import STEP, write
from tests.test_prediction_train import HOURS, START, seed_model

LIVE_STEPS = 12 * 12          # 12 h of readings every 5 minutes through the outbox


@pytest.fixture(scope="module")
def predicted(settings, tmp_path_factory):
    uid = "p" + np.random.default_rng().bytes(3).hex()
    with psycopg.connect(settings.dsn, autocommit=True) as db:
        model, truth = seed_model(db, uid)
        devices = [r[0] for r in db.execute(
            "SELECT d.device_id FROM devices d JOIN assets a USING (asset_id) WHERE a.model_id = %s "
            "ORDER BY a.asset_id", (model,))]
    model_dir = tmp_path_factory.mktemp("models")
    assert train_main(["--model", model, "--quiet", "--model-dir", str(model_dir), "--members", "2",
                       "--max-iter", "60"], settings=settings) == 0
    predictor = load_latest(model_dir, model)
    assert predictor.interval is not None
    svc = DetectionService(settings, ServiceConfig(predict_every_s=0.0),      # every stream hour of the replay
                           predictor_loader=lambda m: load_latest(model_dir, m), name=f"pred-{uid}")
    try:
        svc.start()
        live_from = START + timedelta(hours=HOURS)
        asset = sorted(truth)[0]
        # a predictive order opened the way detection opens one
        with svc.conn.transaction():
            open_or_update(svc.conn, [svc._proposal(asset, model, "bearing_wear", 0.95, live_from, "predictive")])
        svc.conn.commit()
        rng = np.random.default_rng(1)
        load = 0.6 + rng.normal(0, 0.03, (LIVE_STEPS, len(devices)))
        V = np.stack([load, 1.0 + 0.4 * load + rng.normal(0, 0.1, load.shape),
                      45 + 10 * load + rng.normal(0, 0.5, load.shape)], axis=-1)
        with psycopg.connect(settings.dsn) as conn:
            write(conn, devices, live_from, V, outbox=True)
        svc.run(until_idle=True)
    finally:
        svc.close()
    return {"model": model, "asset": asset, "assets": sorted(truth),
            "end": live_from + (LIVE_STEPS - 1) * STEP, "predictor": predictor}


def test_every_asset_gets_a_time_to_failure_with_interval_and_probability(predicted, db):
    rows = db.execute(
        "SELECT asset_id, mode, rul_h, rul_lo_h, rul_hi_h, p_fail, horizon_h, predicted_at FROM asset_health "
        "WHERE asset_id = ANY(%s) AND mode = 'bearing_wear'", (predicted["assets"],)).fetchall()
    assert {r[0] for r in rows} == set(predicted["assets"])
    for _, _, rul, lo, hi, p, horizon, at in rows:
        assert 0 <= lo <= rul <= hi <= predicted["predictor"].rul_model.cap
        assert 0 <= p <= 1 and horizon == predicted["predictor"].horizon_h
        assert predicted["end"] - timedelta(hours=1) <= at <= predicted["end"]


def test_live_orders_carry_the_predicted_failure_interval(predicted, db):
    row = db.execute(
        "SELECT predicted_failure_at, predicted_failure_lo, predicted_failure_hi, detail FROM service_orders "
        "WHERE asset_id = %s AND kind = 'predictive'", (predicted["asset"],)).fetchone()
    at, lo, hi, detail = row
    assert lo <= at <= hi and lo >= predicted["end"] - timedelta(hours=1)
    assert 0 <= detail["p_fail"] <= 1
    rul = db.execute("SELECT rul_h FROM asset_health WHERE asset_id = %s AND mode = 'bearing_wear'",
                     (predicted["asset"],)).fetchone()[0]
    assert abs((at - predicted["end"]).total_seconds() / 3600 - rul) < 1.01      # refreshed, not the opening's


def test_the_api_serves_predictions_and_their_evidence(predicted, client, viewer):
    asset = predicted["asset"]
    r = client.get(f"/api/v1/assets/{asset}/prediction", headers=viewer)
    assert r.status_code == 200, r.text
    body = r.json()
    mode = next(m for m in body["modes"] if m["mode"] == "bearing_wear")
    assert mode["rul_lo_h"] <= mode["rul_h"] <= mode["rul_hi_h"] and 0 <= mode["p_fail"] <= 1
    assert mode["failure_lo"] <= mode["failure_at"] <= mode["failure_hi"]
    assert mode["signature_source"] in ("learned", "manufacturer")
    assert mode["alarm_level_source"] in ("learned", "default")
    assert [o["predicted_failure_lo"] is not None for o in body["orders"]] == [True]
    orders = client.get("/api/v1/service-orders", params={"asset": asset}, headers=viewer).json()["items"]
    assert orders and orders[0]["predicted_failure_lo"] <= orders[0]["predicted_failure_at"] <= orders[0]["predicted_failure_hi"]
    a = client.get(f"/api/v1/assets/{asset}", headers=viewer).json()
    assert a["rul_lo_h"] <= a["rul_h"] <= a["rul_hi_h"] and 0 <= a["p_fail"] <= 1
    assert client.get("/api/v1/assets/no-such-asset/prediction", headers=viewer).status_code == 404
