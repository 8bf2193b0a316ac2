"""`prognos train` against the real TimescaleDB: a small synthetic product model whose bearing
wear shows in vibration before each failure; the trained, stored model must rank a degrading
asset riskier than a healthy one."""

from __future__ import annotations

import json
import warnings
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from detection.prediction.store import list_versions, load_latest
from detection.train_cli import main

SENSORS = ["load", "vibration_rms", "bearing_temp"]
HOURS = 24 * 45
START = datetime(2026, 8, 1, tzinfo=timezone.utc)


def wear(h: np.ndarray, failures: list[float]) -> np.ndarray:
    """Degradation in [0, ~1]: grows over the 400 h before each failure, reset by the repair."""
    d = np.zeros_like(h, dtype=float)
    for f in failures:
        before = (h < f) & (h > f - 400)
        d[before] = np.exp((h[before] - f) / 100.0)
    return d


def readings(rng, failures: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Two readings an hour: (hours since START, vals[n, 3])."""
    h = np.arange(0, HOURS, 0.5)
    load = 0.6 + 0.3 * np.sin(2 * np.pi * h / 24) + rng.normal(0, 0.03, h.size)
    d = wear(h, failures)
    vib = 1.0 + 0.4 * load + 4.0 * d + rng.normal(0, 0.1, h.size)
    temp = 45 + 10 * load + 12 * d + rng.normal(0, 0.5, h.size)
    vals = np.c_[load, vib, temp]
    vals[rng.random(vals.shape) < 0.02] = np.nan  # sensors drop out now and then
    return h, vals


def seed_model(db, uid: str, n_failing: int = 6, n_healthy: int = 4, seed: int = 3) -> tuple[str, dict]:
    rng = np.random.default_rng(seed)
    model = f"TST-{uid}"
    db.execute("INSERT INTO product_models (model_id, name, category) VALUES (%s, 'test pump', 'pump')", (model,))
    for pos, (name, unit, lo, hi) in enumerate([("load", "1", 0, 2), ("vibration_rms", "mm/s", 0, 50),
                                                ("bearing_temp", "degC", -20, 150)]):
        db.execute("INSERT INTO sensors VALUES (%s, %s, %s, %s, %s, %s)", (model, pos, name, unit, lo, hi))
    db.execute("INSERT INTO failure_modes (model_id, mode, sensors, predictable, mttr_h) VALUES "
               "(%s, 'bearing_wear', '{vibration_rms,bearing_temp}', true, 8), "
               "(%s, 'electrical', '{}', false, 4)", (model, model))
    db.execute("INSERT INTO customers VALUES (%s, 'c') ON CONFLICT DO NOTHING", (f"C-{uid}",))
    db.execute("INSERT INTO sites VALUES (%s, %s, 's') ON CONFLICT DO NOTHING", (f"S-{uid}", f"C-{uid}"))
    truth = {}
    for i in range(n_failing + n_healthy):
        asset, device = f"A-{uid}-{i}", f"D-{uid}-{i}"
        db.execute("INSERT INTO assets (asset_id, serial, model_id, customer_id, site_id, install_date) "
                   "VALUES (%s, %s, %s, %s, %s, '2025-01-01')", (asset, asset, model, f"C-{uid}", f"S-{uid}"))
        db.execute("INSERT INTO devices (device_id, asset_id, password_hash) VALUES (%s, %s, 'x')", (device, asset))
        failures = []
        if i < n_failing:
            f = rng.uniform(200, 500)
            while f < HOURS - 24:
                failures.append(float(f))
                f += rng.uniform(400, 800)
        h, vals = readings(rng, failures)
        down = np.zeros(h.size, bool)
        for f in failures:
            down |= (h >= f) & (h < f + 8)
            t0 = START + timedelta(hours=f)
            db.execute("INSERT INTO downtime (asset_id, mode, started_at, ended_at, planned) "
                       "VALUES (%s, 'bearing_wear', %s, %s, false)", (asset, t0, t0 + timedelta(hours=8)))
            db.execute("INSERT INTO repairs (asset_id, mode, started_at, finished_at) VALUES "
                       "(%s, 'bearing_wear', %s, %s)", (asset, t0 + timedelta(minutes=30), t0 + timedelta(hours=8)))
        with db.cursor().copy("COPY telemetry (time, device_id, vals) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(["timestamptz", "text", "real[]"])
            for hh, row in zip(h[~down], vals[~down]):
                cp.write_row((START + timedelta(hours=float(hh)), device,
                              [None if np.isnan(v) else float(v) for v in row]))
        truth[asset] = failures
    return model, truth


def hourly_window(rng, failures, end_h: float, n: int = 168) -> np.ndarray:
    h, vals = readings(rng, failures)
    sel = (h >= end_h - n) & (h < end_h)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an hour whose readings both dropped out
        return np.nanmean(vals[sel].reshape(n, 2, 3), axis=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, settings):
    import psycopg

    uid = "m" + np.random.default_rng().bytes(3).hex()
    with psycopg.connect(settings.dsn, autocommit=True) as db:
        model, truth = seed_model(db, uid)
    model_dir = tmp_path_factory.mktemp("models")
    args = ["--model", model, "--quiet", "--model-dir", str(model_dir), "--members", "2", "--max-iter", "80"]
    assert main(args, settings=settings) == 0
    return model, truth, model_dir, args


def test_trained_model_ranks_degrading_asset_riskier(trained):
    model, _, model_dir, _ = trained
    pred = load_latest(model_dir, model)
    assert pred is not None and pred.version == "v0001"
    assert pred.sensors == SENSORS and pred.window_h == 168
    rng = np.random.default_rng(11)
    # a fresh asset 40 h before a bearing failure, and a healthy one at the same time
    degrading = pred.predict(hourly_window(rng, [600.0], end_h=560.0))
    healthy = pred.predict(hourly_window(rng, [], end_h=560.0))
    assert degrading.p_fail > healthy.p_fail
    assert degrading.p_fail > 0.5 > healthy.p_fail
    assert degrading.rul_h < healthy.rul_h
    assert degrading.mode == "bearing_wear"
    assert 0 <= degrading.rul_h <= 720


def test_metadata_describes_the_training(trained):
    model, truth, model_dir, _ = trained
    meta = json.loads((model_dir / model / "v0001" / "metadata.json").read_text())
    assert meta["model_id"] == model and meta["version"] == "v0001"
    assert sorted(meta["data"]["assets"]) == sorted(truth)
    assert meta["data"]["failures"] == {"bearing_wear": sum(len(f) for f in truth.values())}
    assert meta["sensors"] == SENSORS and meta["horizon_h"] == 336
    assert len(meta["features"]) == (3 + 2) * 16     # + regime z-scores of vibration, temperature
    assert meta["regime"]["condition"] == ["load"]
    assert meta["code_version"] and meta["data"]["from"] < meta["data"]["to"]
    m = meta["metrics_holdout"]
    assert m["holdout_assets"] >= 1 and "horizon_auc" in m and m["horizon_auc"] > 0.7


def test_retraining_adds_a_version_and_never_overwrites(trained, settings):
    model, _, model_dir, args = trained
    before = (model_dir / model / "v0001" / "model.joblib").read_bytes()
    assert main(args + ["--horizon-h", "168"], settings=settings) == 0
    assert list_versions(model_dir, model) == ["v0001", "v0002"]
    assert (model_dir / model / "v0001" / "model.joblib").read_bytes() == before
    latest = load_latest(model_dir, model)
    assert latest.version == "v0002" and latest.horizon_h == 168


def test_model_without_failures_is_not_trained(db, settings, uid, tmp_path):
    model, _ = seed_model(db, uid, n_failing=0, n_healthy=2)
    assert main(["--model", model, "--quiet", "--model-dir", str(tmp_path)], settings=settings) == 1
    assert load_latest(tmp_path, model) is None


def test_unknown_model_and_bad_arguments(settings, tmp_path, capsys):
    assert main(["--model", "NOPE-0", "--quiet", "--model-dir", str(tmp_path)], settings=settings) == 1
    assert "no sensors" in capsys.readouterr().err
    for bad in (["--horizon-h", "-1"], ["--since", "yesterday"], ["--holdout", "1.5"]):
        with pytest.raises(SystemExit) as exc:
            main(bad, settings=settings)
        assert exc.value.code == 2


def test_training_from_the_hourly_rollup(trained, db, settings, tmp_path):
    model, _, _, args = trained
    # stand in for ingest's rollup job: hourly means of this model's telemetry into telemetry_1h
    db.execute("""
        INSERT INTO telemetry_1h (device_id, bucket, n, cnt, avg_vals, min_vals, max_vals)
        SELECT t.device_id, time_bucket('1 hour', t.time), count(*),
               ARRAY[count(vals[1]), count(vals[2]), count(vals[3])]::int[],
               ARRAY[avg(vals[1]), avg(vals[2]), avg(vals[3])]::real[],
               ARRAY[min(vals[1]), min(vals[2]), min(vals[3])]::real[],
               ARRAY[max(vals[1]), max(vals[2]), max(vals[3])]::real[]
        FROM telemetry t JOIN devices d USING (device_id) JOIN assets a USING (asset_id)
        WHERE a.model_id = %s GROUP BY 1, 2 ON CONFLICT DO NOTHING""", (model,))
    out = tmp_path / "m"
    rollup_args = [a if a != args[args.index("--model-dir") + 1] else str(out) for a in args]
    assert main(rollup_args + ["--source", "rollup"], settings=settings) == 0
    pred = load_latest(out, model)
    assert pred.metadata["data"]["source"] == "rollup"
    rng = np.random.default_rng(5)
    assert pred.predict(hourly_window(rng, [600.0], 560.0)).p_fail > pred.predict(hourly_window(rng, [], 560.0)).p_fail


def test_recent_window_matches_training_hours(trained, db, settings):
    model, truth, model_dir, _ = trained
    from detection.prediction.history import load_history, recent_window

    asset = sorted(truth)[0]
    device = asset.replace("A-", "D-", 1)
    hist = {a.asset_id: a for a in load_history(db, model).assets}[asset]
    at = START + timedelta(hours=300, minutes=40)
    w = recent_window(db, device, at, 48, 3)
    assert w.shape == (48, 3)
    end = int(at.timestamp() // 3600 - hist.start_h) + 1
    np.testing.assert_allclose(w[:-1], hist.values[end - 48 : end - 1], rtol=1e-6, equal_nan=True)
    # the current hour holds only the readings up to `at` (10:00 and 10:30 of hour 300)
    assert np.isfinite(w[-1]).any()
    empty = recent_window(db, device, START - timedelta(days=30), 24, 3)
    assert empty.shape == (24, 3) and np.isnan(empty).all()
    pred = load_latest(model_dir, model)
    assert 0 <= pred.predict(recent_window(db, device, at, pred.window_h, 3)).p_fail <= 1


def test_detection_service_times_orders_with_the_trained_model(trained, settings):
    """The online service's order proposal carries the trained model's predicted failure time:
    sooner for an asset 60 h before its failure than for a healthy one."""
    from detection.service import DetectionService

    model, truth, model_dir, _ = trained
    failing = next(a for a, f in truth.items() if f and f[0] > 300)
    healthy = next(a for a, f in truth.items() if not f)
    at = START + timedelta(hours=truth[failing][0] - 60)
    svc = DetectionService(settings, predictor_loader=lambda m: load_latest(model_dir, m), name="timing")
    try:
        svc._refresh_catalog(force=True)
        soon = svc._proposal(failing, model, "bearing_wear", 0.95, at, "predictive")
        later = svc._proposal(healthy, model, "bearing_wear", 0.95, at, "predictive")
    finally:
        svc.close()
    assert soon.predicted_failure_at is not None and later.predicted_failure_at is not None
    assert at < soon.predicted_failure_at < later.predicted_failure_at
    assert soon.respond_by <= soon.predicted_failure_at
