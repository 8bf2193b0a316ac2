"""FleetPublisher against the real broker: contract-conformant messages on the right topics,
batching, the Last Will, backpressure, clear errors."""

from __future__ import annotations

import threading
import time

import jsonschema
import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from schemas.telemetry import load_schema, state_topic, telemetry_topic
from simulator.publisher import FleetPublisher
from tests.test_ingest_support import make_fleet, wait_for

pytestmark = pytest.mark.timeout(60)


class Listener:
    """A paho subscriber (the ingest account) that records (topic, payload)."""

    def __init__(self, settings, topics):
        self.got: list[tuple[str, bytes]] = []
        self.ready = threading.Event()
        c = self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        c.username_pw_set(settings.mqtt_ingest_user, settings.mqtt_ingest_password)
        c.on_connect = lambda cl, *a: cl.subscribe([(t, 1) for t in topics])
        c.on_subscribe = lambda *a: self.ready.set()
        c.on_message = lambda cl, u, m: self.got.append((m.topic, m.payload))
        c.connect(settings.mqtt_host, settings.mqtt_port)
        c.loop_start()
        assert self.ready.wait(10)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def test_messages_follow_the_contract_and_batching(settings, db, uid):
    creds = make_fleet(db, settings, uid, n=2)
    dev = next(iter(creds))
    lis = Listener(settings, [telemetry_topic(dev), state_topic(dev)])
    try:
        with FleetPublisher(settings, creds, batch=10) as pub:
            t0 = time.time() - 100
            assert pub.publish_readings(dev, [(t0 + i, {"speed": float(i), "oil_temp": None})
                                              for i in range(25)]) == 3
            pub.publish_state(dev, {"event": "failure", "t": t0, "mode": "bearing_wear"})
            assert pub.flush(10)
            wait_for(lambda: len(lis.got) == 4, timeout=10, what="4 messages")
            assert pub.stats()["acked"] == 4
    finally:
        lis.close()
    tel_schema, state_schema = load_schema("telemetry"), load_schema("state")
    sizes = []
    for topic, payload in lis.got:
        doc = orjson.loads(payload)
        if topic == telemetry_topic(dev):
            jsonschema.validate(doc, tel_schema)
            sizes.append(len(doc["readings"]))
        else:
            assert topic == state_topic(dev)
            jsonschema.validate(doc, state_schema)
            assert doc["event"] == "failure" and doc["mode"] == "bearing_wear"
    assert sizes == [10, 10, 5]


def test_last_will_announces_offline_on_abrupt_loss(settings, db, uid):
    creds = make_fleet(db, settings, uid, n=1)
    dev = next(iter(creds))
    lis = Listener(settings, [state_topic(dev)])
    try:
        with FleetPublisher(settings, creds) as pub:
            pub.drop_connection(dev)
            wait_for(lambda: lis.got, timeout=10, what="the Will")
            wait_for(lambda: pub.stats()["connected"] == 1, timeout=10, what="reconnect")
        doc = orjson.loads(lis.got[0][1])
        jsonschema.validate(doc, load_schema("state"))
        assert doc["event"] == "offline"
        n = len(lis.got)
        time.sleep(0.3)
        assert len(lis.got) == n, "a clean stop must not publish the Will"
    finally:
        lis.close()


def test_backpressure_bounds_pending_and_delivers_everything(settings, db, uid):
    creds = make_fleet(db, settings, uid, n=3)
    lis = Listener(settings, [telemetry_topic(d) for d in creds])
    try:
        with FleetPublisher(settings, creds, max_pending=5) as pub:
            for i in range(100):
                for d in creds:
                    pub.publish_readings(d, [(time.time() - 200 + i, {"speed": 1.0})])
                assert pub.stats()["outstanding"] <= 5
            assert pub.flush(20)
        wait_for(lambda: len(lis.got) == 300, timeout=10, what="300 messages")
    finally:
        lis.close()


def test_clear_errors(settings, db, uid):
    creds = make_fleet(db, settings, uid, n=1)
    with pytest.raises(ValueError, match="qos"):
        FleetPublisher(settings, creds, qos=2)
    with pytest.raises(ValueError):
        FleetPublisher(settings, {})
    pub = FleetPublisher(settings, creds)
    with pytest.raises(RuntimeError, match="not started"):
        pub.publish_readings(next(iter(creds)), [(time.time(), {"speed": 1.0})])
    with pub:
        with pytest.raises(ValueError, match="not in this publisher"):
            pub.publish_readings("someone-else", [(time.time(), {"speed": 1.0})])
        assert pub.publish_readings(next(iter(creds)), []) == 0        # nothing to send
        with pytest.raises(ValueError, match="needs a mode"):
            pub.publish_state(next(iter(creds)), {"event": "failure"})
