"""``prognos demo`` starts its fleet afresh: the previous demo fleet's telemetry, rollups,
events and assets go (in a database of its own, since the reset also clears the outbox and
the detector checkpoints); nothing of other devices does."""

from __future__ import annotations

from datetime import datetime, timezone

import psycopg

from ops.demo import _reset
from ops.world import World


def test_reset_removes_the_previous_demo_fleet_and_nothing_else():
    t = datetime(2026, 11, 1, tzinfo=timezone.utc)
    with World(broker=False) as w, psycopg.connect(w.settings.dsn, autocommit=True) as db:
        db.execute("INSERT INTO product_models VALUES ('P', 'Pump', 'pump')")
        db.execute("INSERT INTO customers VALUES ('c', 'C')")
        db.execute("INSERT INTO sites (site_id, customer_id, name) VALUES ('s', 'c', 'S')")
        for dev in ("demo-1", "other-1"):
            db.execute("INSERT INTO assets (asset_id, serial, model_id, customer_id, site_id, install_date) "
                       "VALUES (%s, %s, 'P', 'c', 's', '2024-01-01')", (dev, dev))
            db.execute("INSERT INTO devices (device_id, asset_id, password_hash) VALUES (%s, %s, 'x')", (dev, dev))
            db.execute("INSERT INTO telemetry VALUES (%s, %s, '{1}')", (t, dev))
            for table in ("telemetry_1m", "telemetry_1h"):
                db.execute(f"INSERT INTO {table} (device_id, bucket, n, cnt, avg_vals, min_vals, max_vals) "
                           "VALUES (%s, %s, 1, '{1}', '{1}', '{1}', '{1}')", (dev, t))
            db.execute("INSERT INTO device_events (device_id, time, event) VALUES (%s, %s, 'online')", (dev, t))
        _reset(db)
        for table in ("telemetry", "telemetry_1m", "telemetry_1h", "device_events", "devices"):
            left = [r[0] for r in db.execute(f"SELECT device_id FROM {table}")]
            assert left == ["other-1"], table
        assert [r[0] for r in db.execute("SELECT asset_id FROM assets")] == ["other-1"]
