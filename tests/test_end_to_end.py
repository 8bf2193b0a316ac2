"""The whole platform with real processes on real Mosquitto and TimescaleDB: simulator ->
MQTT (each device with its own credentials) -> ingest -> TimescaleDB -> detection -> service
orders -> API. A seal leak starts on one pump: it ends with exactly one predictive order for
that pump and mode, with a predicted MTTR, and none for the healthy pumps; a technician's
repair completes it, and the API's uptime and MTTR agree with the database."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from fastapi.testclient import TestClient

from ops.supervisor import Supervisor, tail
from ops.world import World
from service_api.app import create_app
from service_api.auth import create_token
from simulator.backfill import backfill
from simulator.fleet import Fleet, FleetSpec
from simulator.register import register_fleet
from simulator.runner import LiveRunner, RunOptions

LIVE_H = 90          # simulated hours per live run; readings every 10 simulated minutes
MAX_WATCH_H = 200    # the slow leak (150 h to failure) must be flagged well within this


@pytest.fixture(scope="module")
def e2e_world():
    """A world of its own: nothing other tests left in the session database interferes."""
    with World() as w:
        yield w


@pytest.fixture(scope="module")
def platform(e2e_world, tmp_path_factory):
    world = e2e_world
    s = world.settings
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    live_start = now - timedelta(hours=MAX_WATCH_H + LIVE_H + 30)
    start = live_start - timedelta(days=10)
    fleet = Fleet(FleetSpec(n_assets=6, seed=31, start=start, models=["PMP-200"], id_prefix="e2e",
                            hazard_scale=0.0, pre_existing=False, sensor_faults=False))
    creds = register_fleet(s, fleet)
    backfill(s, fleet, start, live_start, step_s=600.0, progress=False)
    drill = fleet.assets[2].asset_id
    fleet.inject(drill, "seal_leak", at=live_start, rate=1.0 / 150.0)
    sup = Supervisor(tmp_path_factory.mktemp("e2e-logs"), world.env())
    sup.start("ingest", "ingest")
    sup.start("detect", "detect", "--poll", "0.5", "--no-model")
    # a fresh detection service watches from the newest batch on: publish once it is there
    sup.wait_event("ingest", "mqtt_subscribed")
    sup.wait_event("detect", "detection_started")
    with psycopg.connect(s.dsn, autocommit=True) as conn:
        token = create_token(conn, "e2e viewer", "viewer")
        planner = create_token(conn, "e2e planner", "planner")
    with TestClient(create_app(s)) as client:
        yield {"fleet": fleet, "creds": creds, "drill": drill, "sup": sup, "live_start": live_start,
               "client": client, "auth": {"Authorization": f"Bearer {token}"},
               "planner": {"Authorization": f"Bearer {planner}"}}
    codes = sup.stop()
    assert all(c == 0 for c in codes.values()), {c.name: tail(c.logfile) for c in sup.children}


def _run(world, p, hours: float, execute_orders: bool) -> None:
    fleet = p["fleet"]
    until = fleet.clock + timedelta(hours=hours)
    LiveRunner(world.settings, fleet, RunOptions(acceleration=36000.0, rate_hz=1 / 600.0, batch=6,
                                                 execute_orders=execute_orders, order_poll_s=1.0, until=until),
               credentials=p["creds"]).run()


def _caught_up(world, p, timeout: float = 120.0) -> None:
    """Wait until every reading the fleet published is stored and assessed by detection (each
    asset's health is as recent as its newest reading)."""
    deadline = time.monotonic() + timeout
    devices = [a.device_id for a in p["fleet"].assets]
    newest = p["fleet"].clock - timedelta(minutes=11)        # readings every 10 simulated minutes
    with psycopg.connect(world.settings.dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            assert not p["sup"].dead(), {c.name: tail(c.logfile) for c in p["sup"].dead()}
            behind = conn.execute(
                """SELECT count(*) FROM (SELECT d.asset_id, max(t.time) AS last FROM telemetry t
                       JOIN devices d USING (device_id) WHERE t.device_id = ANY(%s) GROUP BY d.asset_id) x
                   WHERE x.last < %s OR x.last > coalesce((SELECT max(updated_at) FROM asset_health h
                                                           WHERE h.asset_id = x.asset_id), '-infinity')""",
                (devices, newest)).fetchone()[0]
            if behind == 0:
                return
            time.sleep(0.5)
    raise AssertionError("the platform did not catch up: " + "; ".join(
        f"{c.name}: {tail(c.logfile, 5)}" for c in p["sup"].children))


def test_degrading_pump_gets_one_predictive_order_and_healthy_pumps_none(e2e_world, platform):
    world = e2e_world
    watched = 0
    while watched < MAX_WATCH_H:               # 10 simulated hours at a time until an order appears
        _run(world, platform, 10, execute_orders=False)
        _caught_up(world, platform)
        watched += 10
        with psycopg.connect(world.settings.dsn) as conn:
            if conn.execute("SELECT 1 FROM service_orders WHERE asset_id LIKE 'e2e-%%' AND kind = 'predictive'").fetchone():
                break
    assert not [e for e in platform["fleet"].ground_truth.events if e["event"] == "failure"]
    r = platform["client"].get("/api/v1/service-orders", params={"kind": "predictive"}, headers=platform["auth"])
    assert r.status_code == 200, r.text
    mine = [o for o in r.json()["items"] if o["asset_id"].startswith("e2e-")]
    with psycopg.connect(world.settings.dsn) as conn:
        health = conn.execute("SELECT asset_id, mode, risk, detail FROM asset_health WHERE asset_id LIKE 'e2e-%%' "
                              "AND risk > 0.05 ORDER BY risk DESC").fetchall()
        anomalies = conn.execute("SELECT asset_id, time, sensor, score FROM anomalies WHERE asset_id LIKE 'e2e-%%' "
                                 "ORDER BY time").fetchall()
    # triage approves it for the top tiers, else it waits for a planner
    assert [(o["asset_id"], o["mode"]) for o in mine] == [(platform["drill"], "seal_leak")], (health, anomalies)
    assert mine[0]["status"] in ("proposed", "approved") and mine[0]["reason"] in (
        "auto_approved", "needs_review", "rate_limited")
    order = mine[0]
    assert order["predicted_mttr_h"] > 0 and order["priority"] in range(1, 6)
    opened = datetime.fromisoformat(order["opened_at"])
    assert platform["live_start"] < opened < platform["fleet"].clock


def test_repair_completes_the_order_and_uptime_and_mttr_agree(e2e_world, platform):
    world = e2e_world
    c = platform["client"]
    for o in c.get("/api/v1/service-orders", params={"asset": platform["drill"], "status": "proposed"},
                   headers=platform["auth"]).json()["items"]:   # the planner approves what triage left
        assert c.post(f"/api/v1/service-orders/{o['order_id']}/approve", json={},
                      headers=platform["planner"]).status_code == 200
    _run(world, platform, LIVE_H, execute_orders=True)       # a technician acts on the order
    _caught_up(world, platform)
    c, auth, drill = platform["client"], platform["auth"], platform["drill"]
    deadline = time.monotonic() + 30
    while True:
        orders = c.get("/api/v1/service-orders", params={"asset": drill}, headers=auth).json()["items"]
        if orders and all(o["status"] == "completed" for o in orders) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert [(o["mode"], o["status"]) for o in orders] == [("seal_leak", "completed")]
    with psycopg.connect(world.settings.dsn) as conn:
        n, mttr = conn.execute(
            "SELECT count(*), avg(extract(epoch FROM finished_at - started_at) / 3600) FROM repairs r "
            "JOIN assets a USING (asset_id) WHERE a.model_id = 'PMP-200' AND r.mode = 'seal_leak'").fetchone()
    assert n >= 1
    report = c.get("/api/v1/mttr", params={"model": "PMP-200", "mode": "seal_leak", "from": "2025-01-01T00:00:00Z"},
                   headers=auth)
    assert report.status_code == 200, report.text
    row = next(x for x in report.json()["by_mode"] if x["model_id"] == "PMP-200" and x["mode"] == "seal_leak")
    assert row["repairs"] == n and row["mttr_h"] == pytest.approx(float(mttr), rel=1e-6)
    with psycopg.connect(world.settings.dsn) as conn:
        down_h, failures = conn.execute(
            "SELECT coalesce(sum(extract(epoch FROM coalesce(ended_at, now()) - started_at)) / 3600, 0), "
            "count(*) FILTER (WHERE NOT planned) FROM downtime WHERE asset_id = %s", (drill,)).fetchone()
    up = c.get("/api/v1/uptime", params={"group_by": "asset", "asset": drill, "from": "2025-01-01T00:00:00Z"},
               headers=auth)
    assert up.status_code == 200, up.text
    mine = next(r for r in up.json()["rows"] if r["key"] == drill)
    assert mine["downtime_h"] == pytest.approx(float(down_h), abs=0.01) and mine["failures"] == failures
    assert mine["availability"] == pytest.approx(1 - mine["downtime_h"] / mine["exposure_h"])
