"""The learned order rule, end to end against the real TimescaleDB: ``prognos train`` chooses and
stores it (``order_rules``) only when a product model's history holds enough failures, and the
detection service's prediction pass opens one predictive order per asset and mode when the
predictor's p_fail meets the stored rule (the same ``OrderRule.first_order`` the Backblaze
benchmark orders with), none below it, after a restart too; a bad stored row is a clear error."""

from __future__ import annotations

import logging
from datetime import timedelta

import numpy as np
import psycopg
import pytest

from detection.prediction import order_rules
from detection.prediction.order_choice import MIN_FAILURES, ChosenRule, Life, asset_lives
from detection.prediction.history import AssetHistory
from detection.prediction.order_rule import OrderRule
from detection.prediction.store import load_latest
from detection.service import DetectionService, ServiceConfig
from detection.train_cli import main as train_main
from orders.state import open_or_update
from tests.detection_fixtures import STEP, write
from tests.test_prediction_train import HOURS, START, seed_model

TRAIN = ["--quiet", "--members", "2", "--max-iter", "60"]
LIVE_H = 48


def test_lives_are_cut_at_repairs_and_failures():
    a = AssetHistory("A", 0.0, np.ones((30, 1)), failures=[(10.0, "wear"), (25.5, "electrical")], repairs=[12.0])
    lives = asset_lives(a, np.zeros(30), np.arange(30.0), lambda m: m == "wear")
    assert [life for life, _, _ in lives] == [
        Life(10, fail_row=9.0),                  # rows 0-9: predicted at the end of hours 1-10, the failure at 10
        Life(2, censored=True),                  # rows 10-11: a life ended by the repair (the truth unknown)
        Life(13, censored=True),                 # rows 12-24: ended by a failure no model predicts
        Life(4)]                                 # rows 26-29 (25 ends after the failure): running
    assert lives[0][1].tolist() == list(range(10)) and lives[3][1].tolist() == [26.0, 27.0, 28.0, 29.0]


def test_predicting_the_tail_of_a_history_equals_the_full_backtest():
    from detection.features.pipeline import FeatureSpec
    from detection.prediction.horizon import HorizonClassifier
    from detection.prediction.predictor import AssetPredictor
    from detection.prediction.rul import RULRegressor

    rng = np.random.default_rng(0)
    spec = FeatureSpec(windows=(4,), ewm_alphas=())
    X = rng.normal(size=(300, len(spec.names(["temp"]))))
    rul = RULRegressor(cap=100, n_members=1, max_iter=20, random_state=0).fit(X, np.abs(X[:, 0]) * 50)
    clf = HorizonClassifier(negative_class="", n_members=1, max_iter=20, random_state=0).fit(
        X, np.where(X[:, 0] > 1, "fouling", ""))
    pred = AssetPredictor("M", ["temp"], 4, 336.0, spec, rul, clf)
    hist = [rng.normal(size=(30, 1)), rng.normal(size=(3, 1))]
    full, tail = pred.predict_histories(hist), pred.predict_histories(hist, tail=5)
    for (r, p), (rt, pt) in zip(full, tail):
        np.testing.assert_array_equal(rt, r[-5:])
        np.testing.assert_array_equal(pt, p[-5:])
    with pytest.raises(ValueError, match="tail must be >= 1"):
        pred.predict_histories(hist, tail=0)


@pytest.fixture(scope="module")
def few(settings, tmp_path_factory):
    """A model with fewer failures than an order rule needs, trained; a stale rule row was stored before."""
    uid = "r" + np.random.default_rng().bytes(3).hex()
    with psycopg.connect(settings.dsn, autocommit=True) as db:
        model, truth = seed_model(db, uid)
        order_rules.save(db, ChosenRule(model, OrderRule(0.5), "first_crossing", 99, 1, 1, {}))
    n_fail = sum(len(f) for f in truth.values())
    assert n_fail < MIN_FAILURES
    model_dir = tmp_path_factory.mktemp("models")
    assert train_main(["--model", model, "--model-dir", str(model_dir), *TRAIN], settings=settings) == 0
    return model, truth, model_dir


def test_train_stores_no_rule_without_enough_failures(few, db):
    model, _, _ = few
    assert db.execute("SELECT count(*) FROM order_rules WHERE model_id = %s", (model,)).fetchone()[0] == 0
    assert order_rules.load(db, model) is None


def test_train_chooses_and_stores_a_rule_on_enough_failures(settings, db, uid, tmp_path, capsys):
    model, truth = seed_model(db, uid, n_failing=16, n_healthy=4, seed=5)
    n_fail = sum(len(f) for f in truth.values())
    assert n_fail >= MIN_FAILURES
    assert train_main(["--model", model, "--model-dir", str(tmp_path), *TRAIN], settings=settings) == 0
    stored = order_rules.load(db, model)
    assert stored is not None and stored.failures == n_fail
    assert stored.predictor_version == load_latest(tmp_path, model).version
    assert stored.rule.threshold == 0.5 and stored.rule.urgency_from_h == 336.0    # the trainer's horizon
    runs, candidates, held = db.execute("SELECT runs, candidates, held_out FROM order_rules WHERE model_id = %s",
                                        (model,)).fetchone()
    assert runs == 2 and candidates == 84
    assert 0 <= held["recall_h_at_budget"] <= 1 and held["recall_h_at_budget"] >= held["first_crossing"]["recall_h_at_budget"]
    assert held["failures"] > 0 and held["budget"] == "as many orders as held-out failures"
    assert f"{model} order rule: {stored.name}" in capsys.readouterr().out


def _live(model_readings_rng, n_dev: int, degrading: set[int]) -> np.ndarray:
    """``LIVE_H`` hours of readings every 5 minutes: healthy, or (devices ``degrading``) the last
    two days before a bearing failure as the history's failures look."""
    steps = int(LIVE_H * 12)
    h = np.arange(steps) / 12.0
    load = 0.6 + model_readings_rng.normal(0, 0.03, (steps, n_dev))
    d = np.zeros((steps, n_dev))
    for j in degrading:
        d[:, j] = np.exp((h - LIVE_H - 20.0) / 100.0)
    return np.stack([load, 1.0 + 0.4 * load + 4.0 * d + model_readings_rng.normal(0, 0.1, load.shape),
                     45 + 10 * load + 12 * d + model_readings_rng.normal(0, 0.5, load.shape)], axis=-1)


def _rule_orders(db, model) -> list[tuple]:
    return db.execute(
        "SELECT o.asset_id, o.mode, o.detail->>'source', o.detail->>'note' FROM service_orders o "
        "JOIN assets a USING (asset_id) WHERE a.model_id = %s AND o.kind = 'predictive' ORDER BY o.order_id",
        (model,)).fetchall()


def _prediction_pass(settings, model_dir, name: str, at) -> DetectionService:
    svc = DetectionService(settings, ServiceConfig(predict_every_s=0.0),
                           predictor_loader=lambda m: load_latest(model_dir, m), name=name)
    svc.start()
    svc.stream_time = at.timestamp()
    with svc.conn.transaction():
        svc._refresh_predictions()
    svc.conn.commit()
    return svc


def test_service_orders_when_p_fail_meets_the_stored_rule(few, settings, db, client, viewer):
    model, truth, model_dir = few
    assets = sorted(truth)
    devices = [a.replace("A-", "D-", 1) for a in assets]
    healthy = [i for i, a in enumerate(assets) if not truth[a]]
    first, second, evidence = healthy[0], healthy[1], healthy[2]
    order_rules.save(db, ChosenRule(model, OrderRule(0.5), "first_crossing", 10, 1, 1, {}))
    live_from = START + timedelta(hours=HOURS)
    rng = np.random.default_rng(2)
    with psycopg.connect(settings.dsn) as conn:
        write(conn, devices, live_from, _live(rng, len(devices), {first, evidence}), outbox=False)
    end = live_from + (int(LIVE_H * 12) - 1) * STEP
    svc = DetectionService(settings, ServiceConfig(predict_every_s=0.0),
                           predictor_loader=lambda m: load_latest(model_dir, m), name=f"rules-{model}")
    try:  # an order detection's evidence opened for one of the degrading assets an hour before
        svc.start()
        with svc.conn.transaction():
            open_or_update(svc.conn, [svc._proposal(assets[evidence], model, "bearing_wear", 0.95,
                                                    end - timedelta(hours=1), "predictive")])
        svc.conn.commit()
        svc.stream_time = end.timestamp()
        with svc.conn.transaction():
            svc._refresh_predictions()
        svc.conn.commit()
    finally:
        svc.close()
    orders = _rule_orders(db, model)
    by_asset = {a: (m, src, note) for a, m, src, note in orders}
    assert len(orders) == len(by_asset) == 2                  # one per asset and mode
    mode, src, note = by_asset[assets[first]]
    assert mode == "bearing_wear" and src == "order_rule"
    assert note.startswith("predicted p_fail ") and note.endswith("rule: p_fail >= 0.5")
    assert by_asset[assets[evidence]][1] == "detection"        # the evidence order, updated, not a second one
    p = dict(db.execute("SELECT asset_id, p_fail FROM asset_health WHERE asset_id = ANY(%s) AND mode = 'bearing_wear'",
                        (assets,)).fetchall())
    assert p[assets[first]] >= 0.5
    assert all(p[assets[i]] < 0.5 for i in healthy if i not in (first, evidence))     # below the rule: no order

    # a restart: the rule is read from the table again; the first asset's life already has its order,
    # the second asset now degrades and gets one
    with psycopg.connect(settings.dsn) as conn:
        later = end + STEP
        write(conn, [devices[second]], later, _live(rng, 1, {0}), outbox=False)
    svc = _prediction_pass(settings, model_dir, f"rules2-{model}", later + (int(LIVE_H * 12) - 1) * STEP)
    try:
        assert svc._order_rule(model).rule == OrderRule(0.5)
    finally:
        svc.close()
    orders = _rule_orders(db, model)
    assert [(a, s) for a, _, s, _ in orders].count((assets[first], "order_rule")) == 1
    assert (assets[second], "order_rule") in [(a, s) for a, _, s, _ in orders] and len(orders) == 3
    body = client.get(f"/api/v1/assets/{assets[first]}/prediction", headers=viewer).json()
    assert body["order_rule"]["rule"] == "p_fail >= 0.5" and body["order_rule"]["failures"] == 10
    assert [o["detail"]["source"] for o in body["orders"]] == ["order_rule"]


def test_a_bad_stored_rule_is_a_clear_error(few, settings, db, caplog, client, viewer):
    model, _, model_dir = few
    for rule, words in (('{"threshold": 2}', "threshold must be in (0, 1]"),
                        ('{"threshold": 0.5, "rise_days": 3}', "unknown rule fields ['rise_days']"),
                        ('[0.5]', "must be a JSON object")):
        db.execute("INSERT INTO order_rules (model_id, rule, name, failures, runs, candidates) "
                   "VALUES (%s, %s, 'x', 30, 2, 84) ON CONFLICT (model_id) DO UPDATE SET rule = EXCLUDED.rule",
                   (model, rule))
        with pytest.raises(ValueError) as exc:
            order_rules.load(db, model)
        assert f"order_rules row of {model!r}" in str(exc.value) and words in str(exc.value)
    svc = DetectionService(settings, predictor_loader=lambda m: load_latest(model_dir, m), name=f"bad-{model}")
    try:
        with caplog.at_level(logging.ERROR, logger="prognos.detect"):
            assert svc._order_rule(model) is None            # logged; evidence orders go on
        assert "order_rule_invalid" in caplog.text
    finally:
        svc.close()
    assert client.get(f"/api/v1/assets/{sorted(few[1])[0]}/prediction", headers=viewer).json()["order_rule"] is None
    order_rules.delete(db, model)
