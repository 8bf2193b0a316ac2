"""The online detection service on real TimescaleDB: a degrading asset gets exactly one
predictive order for the right failure mode, healthy assets none; a repair completes it and
the asset starts over; a restart from the checkpoint continues exactly."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import psycopg
import pytest

from detection.service import DetectionService
from tests.detection_fixtures import STEP, make_fleet, past_start, readings, write

HISTORY, LIVE = 3 * 288, 7 * 288          # 3 days of history, 7 days through the outbox


@pytest.fixture(scope="module")
def scenario(settings):
    uid = "svc"
    with psycopg.connect(settings.dsn) as conn:
        fleet = make_fleet(conn, uid)
        conn.commit()
        start = past_start(10.5)
        V = readings(len(fleet["devices"]), start, HISTORY + LIVE, degrade={0: HISTORY + 4 * 288})
        write(conn, fleet["devices"], start, V[:HISTORY], outbox=False)
        svc = DetectionService(settings, name=f"test-{uid}")
        svc.start()                                   # watches from the outbox head on
        write(conn, fleet["devices"], start + HISTORY * STEP, V[HISTORY:], outbox=True)
        svc.run(until_idle=True)
        fleet.update(start=start, svc=svc, degrade_at=start + (HISTORY + 4 * 288) * STEP)
        yield fleet
        svc.close()


def test_degrading_asset_gets_one_predictive_order_and_healthy_none(scenario, db):
    orders = db.execute("SELECT asset_id, mode, kind, status, priority, sla_tier, predicted_mttr_h, opened_at, "
                        "respond_by FROM service_orders WHERE asset_id = ANY(%s)", (scenario["assets"],)).fetchall()
    assert [(o[0], o[1], o[2], o[3]) for o in orders] == [(scenario["assets"][0], "bearing_wear", "predictive", "approved")]
    _, _, _, _, prio, tier, mttr, opened, respond = orders[0]
    assert tier == "platinum" and prio <= 3 and mttr == pytest.approx(6.0)
    assert opened > scenario["degrade_at"] and respond > opened
    health = dict(db.execute("SELECT asset_id, risk FROM asset_health WHERE mode = 'bearing_wear' AND asset_id = ANY(%s)",
                             (scenario["assets"],)).fetchall())
    assert len(health) == len(scenario["assets"])
    assert health[scenario["assets"][0]] >= 0.9
    assert max(v for a, v in health.items() if a != scenario["assets"][0]) < 0.5
    n_anom = db.execute("SELECT count(*) FROM anomalies WHERE asset_id = %s", (scenario["assets"][0],)).fetchone()[0]
    assert n_anom >= 1


def test_repair_completes_the_order_and_the_asset_starts_over(scenario, db, settings):
    svc = scenario["svc"]
    end = scenario["start"] + (HISTORY + LIVE) * STEP
    db.execute("INSERT INTO downtime (asset_id, mode, started_at, ended_at) VALUES (%s, 'bearing_wear', %s, %s)",
               (scenario["assets"][0], end, end + timedelta(hours=5)))
    db.execute("INSERT INTO repairs (asset_id, mode, started_at, finished_at) VALUES (%s, 'bearing_wear', %s, %s)",
               (scenario["assets"][0], end + timedelta(hours=1), end + timedelta(hours=5)))
    V = readings(len(scenario["devices"]), end + timedelta(hours=5), 24, degrade={}, seed=5)
    with psycopg.connect(settings.dsn) as conn:
        write(conn, scenario["devices"], end + timedelta(hours=5), V, outbox=True)
    svc.run(until_idle=True)
    rows = db.execute("SELECT kind, status, first_time_fix FROM service_orders WHERE asset_id = %s ORDER BY order_id",
                      (scenario["assets"][0],)).fetchall()
    # the failure refreshed the live order, the repair closed it; nobody said whether it was a first-time fix
    assert rows == [("predictive", "completed", None)]
    st = svc.models[scenario["model"]]
    i = st.index[scenario["devices"][0]]
    assert st.rate[i].max() == 0.0 and not st.ordered[i].any()


def test_restart_from_checkpoint_continues_exactly(settings, db):
    fleet = make_fleet(db, "rst", n_assets=3)
    start = past_start(4)
    V = readings(3, start, 3 * 288, degrade={1: 288}, seed=3)
    write(db, fleet["devices"], start, V[:100], outbox=False)
    straight = DetectionService(settings, name="straight")
    straight.start()
    split = DetectionService(settings, name="split")
    split.start()
    write(db, fleet["devices"], start + 100 * STEP, V[100:400], outbox=True)
    straight.run(until_idle=True)
    split.run(until_idle=True)                  # checkpoints when idle
    split.close()
    write(db, fleet["devices"], start + 400 * STEP, V[400:], outbox=True)
    straight.run(until_idle=True)
    resumed = DetectionService(settings, name="split")
    resumed.start()
    resumed.run(until_idle=True)
    a, b = straight.models[fleet["model"]], resumed.models[fleet["model"]]
    assert a.devices == b.devices
    np.testing.assert_array_equal(a.rate, b.rate)
    assert a.det.to_bytes() == b.det.to_bytes()
    straight.close()
    resumed.close()


def test_without_history_the_first_rows_fit_the_normaliser_and_are_then_assessed(settings, db):
    """A brand-new installed base: nothing to fit the condition normaliser on at start-up, so the
    service holds the first rows, fits on them, and then assesses them (none is skipped)."""
    fleet = make_fleet(db, "nohist", n_assets=3)
    start = past_start(4)
    svc = DetectionService(settings, name="nohist")
    svc.start()
    st_before = svc.models.get(fleet["model"])
    assert st_before is None or st_before.norm is None
    V = readings(3, start, 3 * 288, degrade={}, seed=9)     # 2,592 rows: enough to fit on
    write(db, fleet["devices"], start, V, outbox=True)
    svc.run(until_idle=True)
    st = svc.models[fleet["model"]]
    assert st.norm is not None and not st.buffer
    assert int(st.det.cnt[:, 1, 0].min()) > 0          # every device's readings reached the detectors
    health = db.execute("SELECT count(*) FROM asset_health WHERE asset_id = ANY(%s)", (fleet["assets"],)).fetchone()[0]
    assert health == 3 * 2                              # two predictable modes per asset
    svc.close()


def test_the_normaliser_history_spans_the_history_days_when_rows_are_capped(settings, db, monkeypatch):
    """More history than ``history_rows``: every k-th reading of each device, over the whole
    span (not just the newest rows)."""
    from detection.service import ModelState, ServiceConfig

    fleet = make_fleet(db, "span", n_assets=3)
    start = past_start(3)
    V = readings(3, start, 2 * 288, degrade={}, seed=4)     # 2 days, 1,728 rows
    write(db, fleet["devices"], start, V, outbox=False)
    seen = {}
    real = ModelState.fit_normalizer

    def spy(self, devices, X, ts, *, keep_state):
        if self.info.model_id == fleet["model"]:
            seen.update(devices=list(devices), ts=ts.copy())
        return real(self, devices, X, ts, keep_state=keep_state)

    monkeypatch.setattr(ModelState, "fit_normalizer", spy)
    svc = DetectionService(settings, ServiceConfig(history_rows=600, min_fit_rows=300), name="span")
    svc.start()
    svc.close()
    ts, step = seen["ts"], STEP.total_seconds()
    assert 300 <= len(ts) <= 600
    assert ts.min() - start.timestamp() < 3 * step          # reaches back to the first day
    assert (np.diff(ts) >= 0).all()                          # oldest first
    assert set(seen["devices"]) == set(fleet["devices"])


def test_evidence_decayed_below_the_range_of_real_is_written_as_zero(scenario, db):
    """Evidence decays exponentially between anomalies; a value below float4's range (which
    PostgreSQL refuses as an underflow) is stored as 0 and the service carries on."""
    svc, asset = scenario["svc"], scenario["assets"][1]
    at = scenario["start"] + (HISTORY + LIVE) * STEP + timedelta(days=1)
    svc._write_health({(asset, "seal_leak"): (at, 1e-300, 1e-60)})
    svc.conn.commit()
    risk, evidence = db.execute("SELECT risk, detail ->> 'evidence' FROM asset_health WHERE asset_id = %s "
                                "AND mode = 'seal_leak'", (asset,)).fetchone()
    assert risk == 0.0 and float(evidence) == 0.0
