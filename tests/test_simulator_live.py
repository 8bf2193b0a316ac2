"""The live runner against the real Mosquitto: contract-valid telemetry and state events per
device with its own credentials, never ahead of now; misbehaviour on request."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import jsonschema
import orjson
import paho.mqtt.client as mqtt
import pytest

from schemas.telemetry import load_schema
from simulator.fleet import Fleet, FleetSpec
from simulator.register import register_fleet
from simulator.runner import LiveRunner, RunOptions


class _Sink:
    def __init__(self, settings):
        self.msgs: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        c = self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sink-{time.time_ns()}",
                                 protocol=mqtt.MQTTv5)
        c.username_pw_set(settings.mqtt_ingest_user, settings.mqtt_ingest_password)
        c.on_connect = lambda cl, u, f, rc, p=None: (cl.subscribe(
            f"{settings.mqtt_topic_prefix}/devices/#", qos=1), self.ready.set())
        c.on_message = self._on
        c.connect(settings.mqtt_host, settings.mqtt_port)
        c.loop_start()
        assert self.ready.wait(10)
        time.sleep(0.3)

    def _on(self, c, u, m):
        with self.lock:
            self.msgs.append((m.topic, m.payload))

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def _run_watched(settings, fleet, creds, opts: RunOptions) -> tuple[dict, _Sink]:
    """Run the fleet live with ``opts`` while a sink records everything published."""
    sink = _Sink(settings)
    try:
        out = LiveRunner(settings, fleet, opts, credentials=creds).run()
        time.sleep(0.5)                          # the last messages reach the sink
    finally:
        sink.close()
    return out, sink


def _fleet(uid, n=6, hours=3):
    start = (datetime.now(timezone.utc) - timedelta(hours=hours)).replace(second=0, microsecond=0)
    return Fleet(FleetSpec(n_assets=n, seed=4, start=start, id_prefix=f"L{uid}",
                           hazard_scale=50))


def test_live_run_publishes_contract_valid_readings_and_state_events(settings, uid):
    fleet = _fleet(uid)
    creds = register_fleet(settings, fleet)
    aid = fleet.assets[0].asset_id
    fleet.inject(aid, "sudden", at=fleet.start + timedelta(minutes=30))
    opts = RunOptions(acceleration=20000, rate_hz=1 / 60, batch=10, duration_s=2)
    out, sink = _run_watched(settings, fleet, creds, opts)
    # one reading a minute from the start to where the run caught up with now (a run that
    # crosses a minute boundary takes that minute's reading too)
    end = datetime.fromisoformat(out["sim_time"])
    assert abs((datetime.now(timezone.utc) - end).total_seconds()) < 120
    assert out["readings"] == 6 * round((end - fleet.start).total_seconds() / 60)
    tele_schema, state_schema = load_schema("telemetry"), load_schema("state")
    now = datetime.now(timezone.utc)
    readings, states = 0, []
    for topic, payload in sink.msgs:
        dev = topic.split("/")[3]
        if not dev.startswith(f"L{uid}-"):
            continue
        doc = orjson.loads(payload)
        if topic.endswith("/telemetry"):
            jsonschema.validate(doc, tele_schema)
            rs = doc.get("readings") or [doc]
            readings += len(rs)
            for r in rs:
                t = datetime.fromisoformat(r["t"].replace("Z", "+00:00"))
                assert t <= now
        else:
            jsonschema.validate(doc, state_schema)
            states.append((dev, doc["event"], doc.get("mode")))
    assert readings == out["readings"]
    dev0 = fleet.assets[0].device_id
    assert (dev0, "failure", "sudden") in states
    assert (dev0, "online", None) in states


def test_misbehaving_devices(settings, uid):
    fleet = _fleet(uid, n=3)
    creds = register_fleet(settings, fleet)
    opts = RunOptions(acceleration=3000, rate_hz=1 / 60, batch=5, duration_s=2.5,
                      misbehave=["malformed", "duplicate", "clock_skew", "wrong_credentials",
                                 "burst"], misbehave_devices=1, misbehave_every_s=0.5)
    out, sink = _run_watched(settings, fleet, creds, opts)
    mis = out["misbehaviour"]
    assert mis["wrong_credentials_refused"] >= 2 and "wrong_credentials_ACCEPTED" not in mis
    assert mis["duplicate"] >= 1 and mis["malformed:not_json"] >= 1
    assert mis["burst_readings"] > 0
    bad = fleet.assets[0].device_id
    payloads = [p for t, p in sink.msgs if t == f"{settings.mqtt_topic_prefix}/devices/{bad}/telemetry"]
    assert b'{"v": 1, "t": ' in payloads                   # malformed passes the broker
    assert len(payloads) != len(set(payloads))              # duplicates


def test_run_options_reject_bad_values():
    with pytest.raises(ValueError):
        RunOptions(acceleration=0.5)
    with pytest.raises(ValueError):
        RunOptions(batch=501)
    with pytest.raises(ValueError):
        RunOptions(rate_hz=0)


def test_technician_executes_predictive_orders(settings, db, uid):
    fleet = _fleet(uid, n=4, hours=24)
    creds = register_fleet(settings, fleet)
    a = next(x for x in fleet.assets if not fleet.is_down(x.asset_id))
    if "fouling" not in fleet.health(a.asset_id) or fleet.health(a.asset_id)["fouling"] == 0:
        fleet.inject(a.asset_id, "fouling", rate=1 / 500)
    oid = db.execute(
        "INSERT INTO service_orders (asset_id, mode, kind, priority, sla_tier, opened_at) "
        "VALUES (%s, 'fouling', 'predictive', 2, 'platinum', now()) RETURNING order_id",
        (a.asset_id,)).fetchone()[0]
    opts = RunOptions(acceleration=50000, rate_hz=1 / 300, batch=5, duration_s=2.5,
                      execute_orders=True, order_poll_s=0.2)
    out, sink = _run_watched(settings, fleet, creds, opts)
    assert out["orders_executed"] == 1
    mt = [e for e in fleet.ground_truth.of(a.asset_id)
          if e["event"] == "maintenance" and e.get("order_id") == oid]
    assert len(mt) == 1 and mt[0]["kind"] == "predictive" and mt[0]["restored"]
    assert fleet.health(a.asset_id)["fouling"] == 0.0
    states = [orjson.loads(p) for t, p in sink.msgs
              if t.endswith(f"/{a.device_id}/state")]
    got = [(s["event"], s.get("mode"), s.get("detail", {}).get("order_id")) for s in states]
    assert ("repair_started", "fouling", oid) in got
    assert ("repair_finished", "fouling", oid) in got


def test_reconnect_storm_devices_come_back(settings, uid):
    fleet = _fleet(uid, n=3)
    creds = register_fleet(settings, fleet)
    opts = RunOptions(acceleration=5000, rate_hz=1 / 60, batch=5, duration_s=2,
                      misbehave=["reconnect_storm"], misbehave_devices=2,
                      misbehave_every_s=0.5)
    out, sink = _run_watched(settings, fleet, creds, opts)
    assert out["misbehaviour"]["reconnect_storm"] >= 4
    offline = [t for t, p in sink.msgs if t.endswith("/state") and b'"offline"' in p]
    assert len(offline) >= 2                      # Last Wills of the dropped connections
    tele = {t.split("/")[3] for t, p in sink.msgs if t.endswith("/telemetry")}
    assert tele == set(fleet.device_ids())         # everyone kept publishing
