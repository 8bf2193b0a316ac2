"""Failure-mode signatures are learned, not handed: ``register`` writes only the manufacturer's
knowledge (directions, intermittent, the service manual's MTTR); ``prognos train`` learns each
mode's signature from failures recorded in the platform's history (a synthetic fleet with known,
injected signatures on real TimescaleDB), and detection uses the learned ones, falling back to
the directions while too few failures are behind a mode."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from detection import signatures
from detection.catalog import Catalog
from detection.kernels.evidence import evidence_update, mode_weights
from detection.service import ModelState, ServiceConfig
from detection.train_cli import main as train_main

SENSORS = ["load", "s_a", "s_b", "s_c", "s_d"]
NOISE = np.array([0.0, 0.2, 1.5, 0.05, 0.4])           # per sensor, physical units
#: injected shift at full damage in noise units: what the learned signature must find
INJECTED = {"wear": {"s_a": 6.0, "s_b": 3.0}, "leak": {"s_b": -6.0, "s_c": -2.4}}
MANUAL = {"wear": ["s_a", "s_b"], "leak": ["s_b", "s_c"]}
START = datetime(2026, 6, 1, tzinfo=timezone.utc)
HOURS = 24 * 40


def seed_fleet(db, uid: str, n_assets: int = 14, seed: int = 7) -> tuple[str, dict[str, int]]:
    """A product model whose two failure modes move sensors by INJECTED before each failure;
    the manufacturer's directions are registered, magnitudes are not. Returns (model, failures per mode)."""
    rng = np.random.default_rng(seed)
    model = f"SIG-{uid}"
    db.execute("INSERT INTO product_models (model_id, name, category) VALUES (%s, 'sig test', 'pump')", (model,))
    for pos, name in enumerate(SENSORS):
        db.execute("INSERT INTO sensors VALUES (%s, %s, %s, 'u', -1000, 1000)", (model, pos, name))
    for mode, moved in MANUAL.items():
        directions = {s: int(np.sign(v)) for s, v in INJECTED[mode].items()}
        db.execute("INSERT INTO failure_modes (model_id, mode, sensors, predictable, mttr_h, signature) "
                   "VALUES (%s, %s, %s, true, 6, %s)", (model, mode, moved, _json(directions)))
    db.execute("INSERT INTO customers VALUES (%s, 'c') ON CONFLICT DO NOTHING", (f"C-{uid}",))
    db.execute("INSERT INTO sites VALUES (%s, %s, 's') ON CONFLICT DO NOTHING", (f"S-{uid}", f"C-{uid}"))
    counts = {"wear": 0, "leak": 0}
    for i in range(n_assets):
        asset, device = f"A-{uid}-{i}", f"D-{uid}-{i}"
        db.execute("INSERT INTO assets (asset_id, serial, model_id, customer_id, site_id, install_date) "
                   "VALUES (%s, %s, %s, %s, %s, '2024-01-01')", (asset, f"SN-{asset}", model, f"C-{uid}", f"S-{uid}"))
        db.execute("INSERT INTO devices (device_id, asset_id, password_hash) VALUES (%s, %s, 'x')", (device, asset))
        h = np.arange(0, HOURS, 0.5)
        load = 0.6 + 0.3 * np.sin(2 * np.pi * h / 24) + rng.normal(0, 0.02, h.size)
        offset = rng.normal(0, 3, len(SENSORS)) * NOISE                  # unit-to-unit differences
        vals = np.c_[load, *[10 + 5 * j * load + offset[j] + rng.normal(0, NOISE[j], h.size)
                             for j in range(1, len(SENSORS))]]
        down = np.zeros(h.size, bool)
        failures = []
        f = rng.uniform(150, 300)
        while f < HOURS - 24:
            failures.append((f, "wear" if (i + len(failures)) % 2 == 0 else "leak"))
            f += rng.uniform(250, 400)
        for f, mode in failures:
            before = (h < f) & (h > f - 120)
            damage = np.exp((h[before] - f) / 40.0)                      # accelerating towards the failure
            for s, shift in INJECTED[mode].items():
                j = SENSORS.index(s)
                vals[before, j] += shift * NOISE[j] * damage
            down |= (h >= f) & (h < f + 6)
            t0 = START + timedelta(hours=f)
            db.execute("INSERT INTO downtime (asset_id, mode, started_at, ended_at, planned) "
                       "VALUES (%s, %s, %s, %s, false)", (asset, mode, t0, t0 + timedelta(hours=6)))
            db.execute("INSERT INTO repairs (asset_id, mode, started_at, finished_at) VALUES (%s, %s, %s, %s)",
                       (asset, mode, t0 + timedelta(minutes=30), t0 + timedelta(hours=6)))
            counts[mode] += 1
        with db.cursor().copy("COPY telemetry (time, device_id, vals) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(["timestamptz", "text", "real[]"])
            for hh, row in zip(h[~down], vals[~down]):
                cp.write_row((START + timedelta(hours=float(hh)), device, [float(v) for v in row]))
    return model, counts


def _json(d):
    from psycopg.types.json import Jsonb

    return Jsonb(d)


def _unit(sig: dict) -> dict:
    top = max(abs(v) for v in sig.values())
    return {k: v / top for k, v in sig.items()}


@pytest.fixture(scope="module")
def learned_fleet(settings):
    import psycopg

    uid = "s" + np.random.default_rng().bytes(3).hex()
    with psycopg.connect(settings.dsn, autocommit=True) as db:
        model, counts = seed_fleet(db, uid)
    assert train_main(["--model", model, "--signatures-only", "--quiet"], settings=settings) == 0
    return model, counts


def test_a_signature_learned_from_synthetic_repairs_matches_the_injected_one(learned_fleet, db):
    model, counts = learned_fleet
    learned = signatures.load(db, model)
    for mode, injected in INJECTED.items():
        got = learned[(model, mode)]
        assert got.events == counts[mode] >= signatures.MIN_EVENTS
        want = _unit(injected)
        assert set(got.signature) == set(want), (mode, got.signature)    # the moved sensors, no others
        for s, w in want.items():
            assert got.signature[s] == pytest.approx(w, abs=0.15), (mode, s, got.signature)


def test_detection_uses_the_learned_signatures(learned_fleet, db):
    model, _ = learned_fleet
    info = Catalog.load(db).models[model]
    assert info.learned.all()
    learned = signatures.load(db, model)
    for m, mode in enumerate(info.modes):
        for j, s in enumerate(info.sensors):
            assert info.signature[m, j] == pytest.approx(learned[(model, mode)].signature.get(s, 0.0))
    # an anomaly where s_c falls a little and s_b a lot is the leak, not wear (s_b is in both,
    # opposite ways); the learned weights, not the direction-only ones, decide
    st = ModelState(info, ServiceConfig())
    z = np.array([[np.nan, 0.2, -6.0, -2.5, 0.1]] * 20)
    rate = np.zeros((1, len(info.modes)))
    out = evidence_update(np.zeros(20, np.int64), np.arange(20.0) * 600, z, np.ones(20, bool), st.weights,
                          st.absolute, rate, np.full(1, np.nan), 6 * 3600.0, 3.0)
    assert info.modes[int(np.argmax(out[-1]))] == "leak"


def test_with_too_few_failures_detection_keeps_the_manufacturers_directions(learned_fleet, db, settings):
    model, _ = learned_fleet
    before = signatures.load(db, model)
    try:
        thin = {mode: signatures.Learned(s.signature, signatures.MIN_EVENTS - 1, s.detail)
                for (_, mode), s in before.items()}
        signatures.save(db, model, thin)
        info = Catalog.load(db).models[model]
        assert not info.learned.any()
        for m, mode in enumerate(info.modes):
            directions = {s: float(np.sign(v)) for s, v in INJECTED[mode].items()}
            assert {s: info.signature[m, j] for j, s in enumerate(info.sensors) if info.signature[m, j]} == directions
        # a running service adopts newly learned signatures at its next catalog refresh
        st = ModelState(info, ServiceConfig())
        old = st.weights.copy()
        signatures.save(db, model, {mode: s for (_, mode), s in before.items()})
        st.adopt_signatures(Catalog.load(db).models[model])
        assert not np.allclose(st.weights, old) and st.info.learned.all()
    finally:
        signatures.save(db, model, {mode: s for (_, mode), s in before.items()})


def test_register_writes_no_simulator_internals(db):
    """Only directions (+1 / -1), the intermittent flag and the service manual's round MTTR
    reach the database: no effect sizes, noise levels or repair-time draws."""
    from simulator.catalog import CATALOG
    from simulator.manual import SERVICE_MANUAL_MTTR_H
    from simulator.register import register_catalog

    register_catalog(db)
    rows = db.execute("SELECT model_id, mode, signature, mttr_h, intermittent, sensors FROM failure_modes "
                      "WHERE model_id = ANY(%s)", (list(CATALOG),)).fetchall()
    assert len(rows) == sum(len(pm.failure_modes) for pm in CATALOG.values())
    for model_id, mode, sig, mttr_h, intermittent, moved in rows:
        pm = CATALOG[model_id]
        fm = pm.mode(mode)
        assert set(sig.values()) <= {-1, 1}, (model_id, mode, sig)
        assert set(sig) == {s for s, v in fm.effects.items() if v} == set(moved)
        assert all(np.sign(fm.effects[s]) == v for s, v in sig.items())
        assert mttr_h == SERVICE_MANUAL_MTTR_H[model_id][mode] == round(mttr_h)
        assert intermittent == bool(fm.spike_sensors)
    # the manual's figures are not the simulator's repair-time scale
    differ = [(m, f) for m, f, *_ in rows
              if SERVICE_MANUAL_MTTR_H[m][f] != pytest.approx(CATALOG[m].mode(f).mttr_h * CATALOG[m].repair_factor)]
    assert len(differ) >= len(rows) // 2
