"""A planner's confirmed change of duty, end to end on the real database: recorded through the
service API (``orders.duty`` owns the table), read by the detection service through the same
path as a false alarm (``orders.feedback.rebaselines``), which re-baselines every sensor of
that asset: its new normal raises no order, while an asset whose readings moved the same way
without a recorded change gets one."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from detection.service import DetectionService
from orders import duty, feedback
from service_api.auth import create_token
from tests.detection_fixtures import STEP, make_fleet, past_start, readings, write

HISTORY, BEFORE, AFTER = 2 * 288, 2 * 288, 3 * 288      # 5-minute steps: 2 days, 2 days, 3 days


@pytest.fixture(scope="module")
def planner(settings):
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        return {"Authorization": f"Bearer {create_token(conn, 'duty-planner', 'planner')}"}


@pytest.fixture(scope="module")
def viewer_token(settings):
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        return {"Authorization": f"Bearer {create_token(conn, 'duty-viewer', 'viewer')}"}


def _new_duty(V, devices, from_step):
    """From ``from_step`` on, the devices run a heavier duty: vibration and bearing temperature
    settle higher (the direction of bearing wear) and stay there."""
    V = V.copy()
    for d in devices:
        V[from_step:, d, 1] += 1.2
        V[from_step:, d, 2] += 6.0
    return V


def test_a_recorded_change_of_duty_rebaselines_the_asset_and_an_unrecorded_one_alarms(settings, db, client, planner):
    fleet = make_fleet(db, "duty", n_assets=4)
    db.commit()
    changed, unrecorded = fleet["assets"][0], fleet["assets"][1]
    start = past_start((HISTORY + BEFORE + AFTER) * STEP / timedelta(days=1) + 0.1)
    V = readings(4, start, HISTORY + BEFORE + AFTER, degrade={}, seed=11)
    V = _new_duty(V, [0, 1], HISTORY + BEFORE)
    write(db, fleet["devices"], start, V[:HISTORY], outbox=False)
    svc = DetectionService(settings, name="test-duty")
    svc.start()
    write(db, fleet["devices"], start + HISTORY * STEP, V[HISTORY:HISTORY + BEFORE], outbox=True)
    svc.run(until_idle=True)
    assert db.execute("SELECT count(*) FROM service_orders WHERE asset_id = ANY(%s)",
                      (fleet["assets"],)).fetchone()[0] == 0

    change_at = start + (HISTORY + BEFORE) * STEP
    r = client.post(f"/api/v1/assets/{changed}/duty-changes", headers=planner,
                    json={"reason": "  second shift added: runs at 90% load  ", "at": change_at.isoformat()})
    assert r.status_code == 201, r.text
    rec = r.json()
    assert (rec["asset_id"], rec["reason"], rec["actor"]) == (changed, "second shift added: runs at 90% load",
                                                              "planner:duty-planner")
    [listed] = client.get(f"/api/v1/assets/{changed}/duty-changes", headers=planner).json()
    assert listed["id"] == rec["id"]
    # detection's one reader of re-baselines sees it, with every sensor (mode None)
    [rb] = [x for x in feedback.rebaselines(db, {"false_alarm": 10**12, "duty_change": rec["id"] - 1})]
    assert (rb.source, rb.asset_id, rb.mode) == ("duty_change", changed, None)

    write(db, fleet["devices"], change_at, V[HISTORY + BEFORE:], outbox=True)
    svc.run(until_idle=True)
    assert svc.rebaseline_position["duty_change"] == rec["id"]
    orders = dict(db.execute("SELECT asset_id, mode FROM service_orders WHERE asset_id = ANY(%s)",
                             (fleet["assets"],)).fetchall())
    assert orders == {unrecorded: "bearing_wear"}      # the same move without a record is a fault
    st = svc.models[fleet["model"]]
    i = st.index[fleet["devices"][0]]
    assert st.rate[i].max() < 0.5 and not st.ordered[i].any()

    svc.checkpoint()                                     # the position survives a restart
    svc.close()
    resumed = DetectionService(settings, name="test-duty")
    resumed.start()
    assert resumed.rebaseline_position["duty_change"] == rec["id"]
    resumed.close()


def test_duty_change_input_errors(settings, db, client, planner, viewer_token):
    fleet = make_fleet(db, "dutyerr", n_assets=1)
    db.commit()
    asset = fleet["assets"][0]
    url = f"/api/v1/assets/{asset}/duty-changes"
    assert client.post(url, headers=viewer_token, json={"reason": "x"}).status_code == 403
    assert client.post(url, headers=planner, json={"reason": "   "}).status_code == 422
    assert client.post(url, headers=planner, json={"reason": "x" * 501}).status_code == 422
    assert client.post(url, headers=planner, json={"reason": "ok", "extra": 1}).status_code == 422
    future = (past_start(-2)).isoformat()
    assert client.post(url, headers=planner, json={"reason": "ok", "at": future}).status_code == 422
    assert client.post("/api/v1/assets/no-such-asset/duty-changes", headers=planner,
                       json={"reason": "ok"}).status_code == 404
    assert client.get(url, headers=viewer_token).json() == []          # nothing was written
    with pytest.raises(LookupError):
        duty.record(db, "no-such-asset", "new duty", actor="test")
    with pytest.raises(ValueError):
        duty.record(db, asset, "", actor="test")
    db.rollback()
