"""The broker enforces identity: a device cannot speak for another, a wrong password or a
revoked device is refused (ops.devices renders the password file and ACL)."""

from __future__ import annotations

import time

import pytest

from ops.devices import revoke
from schemas.telemetry import encode_readings, telemetry_topic
from simulator.publisher import ConnectRefused, FleetPublisher
from tests.test_ingest_support import IngestThread, count_rows, make_fleet, wait_for

pytestmark = pytest.mark.timeout(90)


def test_device_cannot_publish_under_another_devices_topic(settings, db, uid):
    creds = make_fleet(db, settings, uid, n=2)
    mallory, victim = list(creds)
    t = time.time() - 60
    with IngestThread(settings), FleetPublisher(settings, creds) as pub:
        pub.publish_raw(mallory, telemetry_topic(victim), encode_readings([(t, {"speed": 66.0})]))
        pub.publish_readings(mallory, [(t, {"speed": 1.0})])      # its own topic: fine
        assert pub.flush(30)
        wait_for(lambda: count_rows(db, [mallory]) == 1, what="mallory's own reading")
        time.sleep(0.5)
    assert count_rows(db, [victim]) == 0
    assert db.execute("SELECT count(*) FROM dead_letters WHERE topic = %s",
                      (telemetry_topic(victim),)).fetchone()[0] == 0


def test_wrong_password_is_refused(settings, db, uid):
    creds = make_fleet(db, settings, uid, n=1)
    device = next(iter(creds))
    with pytest.raises(ConnectRefused) as exc:
        FleetPublisher(settings, {device: creds[device] + "x"}, connect_timeout=10).start()
    assert exc.value.device_id == device and exc.value.reason in (0x86, 0x87)


def test_unknown_device_is_refused(settings):
    with pytest.raises(ConnectRefused):
        FleetPublisher(settings, {"no-such-device": "secret"}, connect_timeout=10).start()


def test_revoked_device_is_refused_and_cut_off(settings, db, uid):
    creds = make_fleet(db, settings, uid, n=1)
    device = next(iter(creds))
    pub = FleetPublisher(settings, creds).start()
    try:
        assert revoke(settings, device)
        wait_for(lambda: pub.stats()["connected"] == 0, timeout=10, what="revoked device dropped")
    finally:
        pub.stop()
    with pytest.raises(ConnectRefused):
        FleetPublisher(settings, creds, connect_timeout=10).start()
