"""End to end through the real Mosquitto and TimescaleDB: devices publish with FleetPublisher,
an ingest worker stores; every reading once, refusals in dead_letters, state events applied."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from ingest.rollup import refresh_rollups
from ingest.stats import read_stats
from schemas.telemetry import telemetry_topic
from simulator.publisher import FleetPublisher
from tests.test_ingest_support import IngestThread, count_rows, make_fleet, wait_for

pytestmark = pytest.mark.timeout(120)


def _values(i: int) -> dict:
    return {"vibration_rms": 1.0 + i % 7, "bearing_temp": 60.0 + i % 5, "motor_current": 12.5,
            "discharge_pressure": None, "flow_rate": 100.0, "speed": 1450.0, "oil_temp": 55.0,
            "power": 7.5}


def test_every_reading_stored_exactly_once_with_outbox(settings, db, uid):
    creds = make_fleet(db, settings, uid, n=4)
    t0 = time.time() - 600
    sent = {}
    with IngestThread(settings, batch_size=64), FleetPublisher(settings, creds, batch=1) as single, \
            FleetPublisher(settings, creds, batch=10, client_suffix="-b") as batched:
        for k, device in enumerate(creds):
            readings = [(t0 + i, _values(i)) for i in range(40)]
            pub = single if k % 2 else batched
            pub.publish_readings(device, readings)
            sent[device] = readings
        assert single.flush(30) and batched.flush(30)
        wait_for(lambda: count_rows(db, creds) == 160, what="160 rows")
        # the same readings again (a device retrying): stored once, counted as duplicates
        for device in creds:
            single.publish_readings(device, sent[device][:20])
        assert single.flush(30)
        wait_for(lambda: read_stats(db)["totals"]["duplicates"] >= 80, what="duplicates counted")
    assert count_rows(db, creds) == 160
    device = next(iter(creds))
    vals = db.execute("SELECT vals FROM telemetry WHERE device_id = %s ORDER BY time LIMIT 1",
                      (device,)).fetchone()[0]
    assert vals == [1.0, 60.0, 12.5, None, 100.0, 1450.0, 55.0, 7.5]
    # the outbox lists each stored key exactly once
    keys = db.execute(
        "SELECT d, t FROM ingest_batches, unnest(device_ids, times) AS u(d, t) WHERE d = ANY(%s)",
        (list(creds),)).fetchall()
    assert len(keys) == 160 and len(set(keys)) == 160
    stats = read_stats(db)
    assert stats["totals"]["stored"] >= 160 and stats["workers"]


def test_bad_input_goes_to_dead_letters_and_good_input_still_flows(settings, db, uid):
    creds = make_fleet(db, settings, uid, n=3)
    dev, other, ghost = list(creds)
    topic = telemetry_topic(dev)
    now = datetime.now(timezone.utc)
    iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"  # noqa: E731
    good_t = iso(now - timedelta(seconds=30))
    bad = {
        "malformed_json": b'{"v": 1, "t": ',
        "schema": orjson.dumps({"v": 1, "values": {"speed": 1.0}}),
        "wrong_type": orjson.dumps({"v": 1, "t": good_t, "values": {"speed": "fast"}}),
        "non_finite": b'{"v": 1, "t": "' + good_t.encode() + b'", "values": {"speed": NaN}}',
        "unknown_sensor": orjson.dumps({"v": 1, "t": good_t, "values": {"rpm": 1.0}}),
        "out_of_range": orjson.dumps({"v": 1, "t": good_t, "values": {"speed": -5.0}}),
        "future_time": orjson.dumps({"v": 1, "t": iso(now + timedelta(minutes=10)), "values": {"speed": 1.0}}),
        "too_old": orjson.dumps({"v": 1, "t": iso(now - timedelta(days=settings.retention_days + 1)),
                                 "values": {"speed": 1.0}}),
        "oversized": orjson.dumps({"v": 1, "t": good_t, "values": {"speed": 1.0}, "pad": "x" * 300_000}),
    }
    pub = FleetPublisher(settings, creds).start()
    # an unknown device: its row is gone, the broker has not reloaded (still lets it in)
    db.execute("DELETE FROM devices WHERE device_id = %s", (ghost,))
    with pub, IngestThread(settings):
        for reason, payload in bad.items():
            pub.publish_raw(dev, topic, payload)
            pub.publish_readings(other, [(now - timedelta(seconds=len(reason)), {"speed": 1.0})])
        pub.publish_readings(ghost, [(now - timedelta(seconds=1), {"speed": 2.0})])
        assert pub.flush(30)
        rows = wait_for(lambda: (r := db.execute(
            "SELECT reason, payload, client_id FROM dead_letters WHERE topic IN (%s, %s)",
            (topic, telemetry_topic(ghost))).fetchall()) and len(r) >= len(bad) + 1 and r,
            what="dead letters")
    got = {reason: bytes(payload) for reason, payload, _ in rows}
    for reason, payload in bad.items():
        assert got.get(reason) == payload, reason
    assert got.get("unknown_device") is not None
    assert count_rows(db, [other]) == len({len(r) for r in bad})     # distinct times only
    assert count_rows(db, [dev]) == 0


def test_every_time_form_and_thingsboard_shape_stored_as_utc(settings, db, uid):
    """RFC 3339 with offsets and long fractions, epoch seconds and milliseconds, ThingsBoard's
    shape: stored at their UTC instant to the microsecond, and the outbox names the same keys."""
    creds = make_fleet(db, settings, uid, n=1)
    dev = next(iter(creds))
    topic = telemetry_topic(dev)
    base = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=10)
    ms = int(base.timestamp() * 1000)
    local = (base + timedelta(hours=5, minutes=30)).strftime("%Y-%m-%d %H:%M:%S")
    payloads = [
        orjson.dumps({"v": 1, "t": base.strftime("%Y-%m-%dT%H:%M:%SZ"), "values": {"speed": 1.0}}),
        orjson.dumps({"v": 1, "t": f"{local}.000002999+05:30", "values": {"speed": 2.0}}),
        orjson.dumps({"v": 1, "t": (base.timestamp() + 3), "values": {"speed": 3.0}}),
        orjson.dumps({"ts": ms + 4000, "values": {"speed": 4.0}}),
        orjson.dumps([{"ts": ms + 5000 + i, "values": {"speed": 5.0 + i}} for i in range(3)]),
        orjson.dumps({"speed": 9.0}),                      # ThingsBoard without ts: refused
    ]
    with IngestThread(settings), FleetPublisher(settings, creds) as pub:
        for p in payloads:
            pub.publish_raw(dev, topic, p)
        assert pub.flush(30)
        wait_for(lambda: count_rows(db, [dev]) == 7, what="7 rows")
        wait_for(lambda: db.execute("SELECT count(*) FROM dead_letters WHERE topic = %s",
                                    (topic,)).fetchone()[0] == 1, what="the dead letter")
    got = db.execute("SELECT time, vals[%s] FROM telemetry WHERE device_id = %s ORDER BY time",
                     (6, dev)).fetchall()            # speed: position 5
    us = timedelta(microseconds=1)
    want = [(base, 1.0), (base + 2 * us, 2.0), (base + 3000000 * us, 3.0),
            (base + 4000000 * us, 4.0)] + [(base + (5000000 + 1000 * i) * us, 5.0 + i) for i in range(3)]
    assert got == want
    keys = db.execute("SELECT t FROM ingest_batches, unnest(device_ids, times) AS u(d, t) "
                      "WHERE d = %s ORDER BY t", (dev,)).fetchall()
    assert [k[0] for k in keys] == [w[0] for w in want]
    reason = db.execute("SELECT reason FROM dead_letters WHERE topic = %s", (topic,)).fetchone()[0]
    assert reason == "schema"


def test_state_events_open_and_close_downtime_repairs_and_orders(settings, db, uid):
    creds = make_fleet(db, settings, uid, n=1)
    dev = next(iter(creds))
    asset = f"A-{uid}-0"
    t = time.time() - 3600
    order_id = db.execute(
        "INSERT INTO service_orders (asset_id, mode, kind, status, priority, opened_at) "
        "VALUES (%s, 'bearing_wear', 'predictive', 'approved', 2, now() - interval '2 hours') RETURNING order_id",
        (asset,)).fetchone()[0]
    with IngestThread(settings), FleetPublisher(settings, creds) as pub:
        pub.publish_state(dev, {"event": "online", "t": t})
        pub.publish_state(dev, {"event": "failure", "t": t + 60, "mode": "bearing_wear"})
        pub.publish_state(dev, {"event": "fault", "t": t + 61, "code": "E42"})
        pub.publish_state(dev, {"event": "repair_started", "t": t + 600, "mode": "bearing_wear"})
        pub.publish_state(dev, {"event": "repair_finished", "t": t + 1800, "mode": "bearing_wear"})
        # redelivered: changes nothing
        pub.publish_state(dev, {"event": "repair_finished", "t": t + 1800, "mode": "bearing_wear"})
        assert pub.flush(30)
        wait_for(lambda: db.execute("SELECT count(*) FROM repairs WHERE asset_id = %s",
                                    (asset,)).fetchone()[0] == 1, what="repair row")
    events = [r[0] for r in db.execute(
        "SELECT event FROM device_events WHERE device_id = %s ORDER BY time", (dev,))]
    assert events == ["online", "failure", "fault", "repair_started", "repair_finished"]
    started, ended, mode = db.execute(
        "SELECT started_at, ended_at, mode FROM downtime WHERE asset_id = %s", (asset,)).fetchone()
    assert mode == "bearing_wear" and (ended - started).total_seconds() == pytest.approx(1740, abs=0.01)
    r_start, r_end, r_order, r_kind = db.execute(
        "SELECT started_at, finished_at, order_id, kind FROM repairs WHERE asset_id = %s",
        (asset,)).fetchone()
    assert (r_end - r_start).total_seconds() == pytest.approx(1200, abs=0.01)
    assert r_order == order_id and r_kind == "predictive"
    status, closed = db.execute("SELECT status, closed_at FROM service_orders WHERE order_id = %s",
                                (order_id,)).fetchone()
    assert status == "completed" and closed == r_end
    # the device's report walks the state machine at the repair's times: on site, then restored
    hist = db.execute("SELECT from_status, to_status, actor, reason, at FROM service_order_history "
                      "WHERE order_id = %s ORDER BY id", (order_id,)).fetchall()
    assert [h[:4] for h in hist] == [("approved", "in_progress", f"device:{dev}", "repaired"),
                                     ("in_progress", "completed", f"device:{dev}", "repaired")]
    assert (hist[0][4], hist[1][4]) == (r_start, r_end)


def test_as_found_report_lands_in_the_repair_and_bad_ones_are_dead_lettered(settings, db, uid):
    creds = make_fleet(db, settings, uid, n=1)
    dev = next(iter(creds))
    asset = f"A-{uid}-0"
    db.execute("INSERT INTO failure_modes (model_id, mode, mttr_h) VALUES (%s, 'fouling', 3)", (f"M-{uid}",))
    t = time.time() - 3600
    finished = {"event": "repair_finished", "mode": "bearing_wear", "detail": {"kind": "preventive"}}
    bad = {   # (reason, as_found, event)
        "grade": ("schema", {"fouling": "rusty"}, "repair_finished"),
        "mode": ("unknown_mode", {"flux_capacitor": "good"}, "repair_finished"),
        "shape": ("schema", ["good"], "repair_finished"),
        "event": ("schema", {"fouling": "worn"}, "failure"),
    }
    with IngestThread(settings), FleetPublisher(settings, creds) as pub:
        for k, (_, found, kind) in enumerate(bad.values()):
            pub.publish_state(dev, {**finished, "event": kind, "t": t + k,
                                    "detail": {"kind": "preventive", "as_found": found}})
        pub.publish_state(dev, {**finished, "t": t + 600,
                                "detail": {"kind": "preventive",
                                           "as_found": {"bearing_wear": "good", "fouling": "degraded"}}})
        pub.publish_state(dev, {**finished, "t": t + 1200})            # no report: as before
        assert pub.flush(30)
        wait_for(lambda: db.execute("SELECT count(*) FROM repairs WHERE asset_id = %s",
                                    (asset,)).fetchone()[0] == 2, what="repair rows")
        dead = wait_for(lambda: (r := db.execute(
            "SELECT reason, detail FROM dead_letters WHERE client_id = %s ORDER BY id", (dev,)).fetchall())
            and len(r) == len(bad) and r, what="dead letters")
    assert [r[0] for r in dead] == [v[0] for v in bad.values()]
    assert "rusty" in dead[0][1] and "flux_capacitor" in dead[1][1]
    rows = db.execute("SELECT kind, detail->'as_found' FROM repairs WHERE asset_id = %s ORDER BY finished_at",
                      (asset,)).fetchall()
    assert rows == [("preventive", {"bearing_wear": "good", "fouling": "degraded"}), ("preventive", None)]
    assert db.execute("SELECT count(*) FROM device_events WHERE device_id = %s", (dev,)).fetchone()[0] == 2


def test_rollups_summarise_minutes_and_hours(settings, db, uid):
    creds = make_fleet(db, settings, uid, n=1)
    dev = next(iter(creds))
    base = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    readings = [(base + timedelta(seconds=10 * i),
                 {"vibration_rms": float(i), "bearing_temp": None if i % 2 else 50.0})
                for i in range(12)]                                  # two minutes, 6 readings each
    with IngestThread(settings), FleetPublisher(settings, creds, batch=12) as pub:
        pub.publish_readings(dev, readings)
        assert pub.flush(30)
        wait_for(lambda: count_rows(db, [dev]) == 12, what="12 rows")
    refresh_rollups(db, settle_s=0)
    m = db.execute("SELECT bucket, n, cnt[1:2], avg_vals[1:2], min_vals[1:2], max_vals[1:2] "
                   "FROM telemetry_1m WHERE device_id = %s ORDER BY bucket", (dev,)).fetchall()
    assert [r[1] for r in m] == [6, 6]
    assert m[0][2] == [6, 3] and m[0][3] == [2.5, 50.0] and m[0][4] == [0.0, 50.0] and m[0][5] == [5.0, 50.0]
    assert m[1][3][0] == pytest.approx(8.5)
    h = db.execute("SELECT bucket, n, cnt[1], avg_vals[1], min_vals[1], max_vals[1], cnt[3] "
                   "FROM telemetry_1h WHERE device_id = %s", (dev,)).fetchall()
    assert h == [(base, 12, 12, pytest.approx(5.5), 0.0, 11.0, 0)]
