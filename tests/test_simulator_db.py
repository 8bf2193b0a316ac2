"""Simulator against the real TimescaleDB: registration, backfill (COPY, outbox, downtime,
repairs)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from simulator.backfill import backfill
from simulator.catalog import CATALOG
from simulator.fleet import Fleet, FleetSpec
from simulator.register import register_fleet


def _fleet(uid, n=12, start=None, **kw):
    start = start or (datetime.now(timezone.utc) - timedelta(days=3)).replace(
        minute=0, second=0, microsecond=0)
    return Fleet(FleetSpec(n_assets=n, seed=11, start=start, id_prefix=f"t{uid}", **kw))


def test_register_is_idempotent_and_matches_catalog(settings, db, uid):
    fleet = _fleet(uid)
    creds = register_fleet(settings, fleet)
    assert set(creds) == set(fleet.device_ids())
    again = register_fleet(settings, fleet)
    assert again == creds                       # secrets kept on a second run
    n = db.execute("SELECT count(*) FROM assets WHERE asset_id LIKE %s",
                   (f"t{uid}-%",)).fetchone()[0]
    assert n == 12
    for mid, pm in CATALOG.items():
        names = [r[0] for r in db.execute(
            "SELECT name FROM sensors WHERE model_id = %s ORDER BY position", (mid,))]
        assert names == pm.sensor_names
    tiers = db.execute("SELECT count(*) FROM service_contracts WHERE asset_id LIKE %s",
                       (f"t{uid}-%",)).fetchone()[0]
    assert tiers == 12


def test_backfill_writes_telemetry_outbox_downtime_and_repairs(settings, db, uid):
    fleet = _fleet(uid, n=10, hazard_scale=40.0)
    register_fleet(settings, fleet, provision_devices=False)
    db.execute("INSERT INTO devices (device_id, asset_id, password_hash) "
               "SELECT %s || substr(asset_id, length(%s) + 1), asset_id, 'x' FROM assets "
               "WHERE asset_id LIKE %s", (f"t{uid}-d", f"t{uid}-a", f"t{uid}-a%"))
    end = fleet.start + timedelta(days=2)
    before = db.execute("SELECT coalesce(max(batch_id), 0) FROM ingest_batches").fetchone()[0]
    rows = backfill(settings, fleet, fleet.start, end, step_s=300, outbox=True,
                    progress=False, chunk_s=6 * 3600)
    assert rows == 10 * 2 * 288
    got = db.execute("SELECT count(*), min(time), max(time) FROM telemetry WHERE device_id LIKE %s",
                     (f"t{uid}-%",)).fetchone()
    assert got[0] == rows and got[1] == fleet.start
    keys = db.execute("SELECT sum(cardinality(device_ids)) FROM ingest_batches WHERE batch_id > %s "
                      "AND device_ids[1] LIKE %s", (before, f"t{uid}-%")).fetchone()[0]
    assert keys == rows
    # vals follow sensor positions, NULL where the reading had no value
    dev = fleet.assets[0]
    pm = CATALOG[dev.model_id]
    vals = db.execute("SELECT vals FROM telemetry WHERE device_id = %s ORDER BY time LIMIT 1",
                      (dev.device_id,)).fetchone()[0]
    assert len(vals) == len(pm.sensors)
    # downtime and repairs as recorded from the ground truth
    gt_failures = [e for e in fleet.ground_truth.events if e["event"] == "failure"]
    down = db.execute("SELECT count(*) FROM downtime WHERE asset_id LIKE %s AND NOT planned",
                      (f"t{uid}-%",)).fetchone()[0]
    assert down == len(gt_failures) > 0
    rep_gt = [e for e in fleet.ground_truth.events if e["event"] == "repair_end"]
    rep = db.execute("SELECT count(*) FROM repairs WHERE asset_id LIKE %s",
                     (f"t{uid}-%",)).fetchone()[0]
    assert rep == len(rep_gt)
    ev = dict(db.execute("SELECT event, count(*) FROM device_events WHERE device_id LIKE %s "
                         "GROUP BY 1", (f"t{uid}-%",)).fetchall())
    assert ev.get("start", 0) > 0 and ev.get("stop", 0) > 0
    assert ev.get("failure", 0) == len(gt_failures)
    with pytest.raises(RuntimeError, match="already exists"):
        backfill(settings, _fleet(uid, n=10, hazard_scale=40.0), fleet.start, end,
                 step_s=300, progress=False)


def test_bulk_binary_copy_stores_exactly_what_psycopg_write_row_stores(settings, db, uid):
    start = (datetime.now(timezone.utc) - timedelta(days=2)).replace(minute=0, second=0,
                                                                     microsecond=0)
    rows = {}
    for fast in (True, False):
        fleet = Fleet(FleetSpec(n_assets=9, seed=3, start=start, id_prefix=f"c{uid}{int(fast)}",
                                hazard_scale=30))
        # a mix of id lengths and missing values
        register_fleet(settings, fleet, provision_devices=False)
        n = backfill(settings, fleet, start, start + timedelta(hours=12), step_s=120,
                     progress=False, fast=fast, rollups=False)
        got = db.execute(
            "SELECT substr(device_id, length(%s) + 1), time, vals FROM telemetry "
            "WHERE device_id LIKE %s ORDER BY 1, 2", (f"c{uid}{int(fast)}", f"c{uid}{int(fast)}-%")
        ).fetchall()
        assert len(got) == n == 9 * 360
        rows[fast] = got
    assert rows[True] == rows[False]
    assert any(None in r[2] for r in rows[True])            # NULL elements survive
