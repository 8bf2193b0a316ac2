"""``prognos demo`` keeps to a database of its own: it creates ``prognos_demo`` (marked as the
demo's by a comment on the database), starts its fleet afresh there on every run (the previous
demo fleet's telemetry, rollups, events and assets go, nothing of other devices does), and
refuses a database it did not create before deleting anything."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone

import psycopg
import pytest
from psycopg import sql

from ops.demo import NotDemoDatabase, _reset, ensure_database, main
from ops.world import World
from schemas.migrate import migrate

T = datetime(2026, 11, 1, tzinfo=timezone.utc)


def _fleet(db) -> None:
    """A demo device and another device, each with a row in every table the reset clears."""
    db.execute("INSERT INTO product_models VALUES ('P', 'Pump', 'pump')")
    db.execute("INSERT INTO customers VALUES ('c', 'C')")
    db.execute("INSERT INTO sites (site_id, customer_id, name) VALUES ('s', 'c', 'S')")
    for dev in ("demo-1", "other-1"):
        db.execute("INSERT INTO assets (asset_id, serial, model_id, customer_id, site_id, install_date) "
                   "VALUES (%s, %s, 'P', 'c', 's', '2024-01-01')", (dev, dev))
        db.execute("INSERT INTO devices (device_id, asset_id, password_hash) VALUES (%s, %s, 'x')", (dev, dev))
        db.execute("INSERT INTO telemetry VALUES (%s, %s, '{1}')", (T, dev))
        for table in ("telemetry_1m", "telemetry_1h"):
            db.execute(f"INSERT INTO {table} (device_id, bucket, n, cnt, avg_vals, min_vals, max_vals) "
                       "VALUES (%s, %s, 1, '{1}', '{1}', '{1}', '{1}')", (dev, T))
        db.execute("INSERT INTO device_events (device_id, time, event) VALUES (%s, %s, 'online')", (dev, T))
    db.execute("INSERT INTO ingest_batches (committed_at, device_ids, times, min_time, max_time) "
               "VALUES (now(), '{other-1}', %s, %s, %s)", ([T], T, T))


def _counts(db) -> dict:
    return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("telemetry", "telemetry_1m", "telemetry_1h", "device_events", "devices",
                      "assets", "ingest_batches")}


@pytest.fixture
def demo_settings(settings):
    """Settings naming a demo database that does not exist yet; dropped afterwards."""
    s = settings.model_copy(update={"db_name": f"prognos_demo_{secrets.token_hex(4)}"})
    yield s
    with psycopg.connect(settings.dsn_for("postgres", admin=True), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(s.db_name)))


def test_reset_removes_the_previous_demo_fleet_and_nothing_else(demo_settings):
    ensure_database(demo_settings)              # creates it, with the demo's mark
    ensure_database(demo_settings)              # the next run finds its own database
    migrate(demo_settings.dsn)
    with psycopg.connect(demo_settings.dsn, autocommit=True) as db:
        _fleet(db)
        _reset(db)
        for table in ("telemetry", "telemetry_1m", "telemetry_1h", "device_events", "devices"):
            left = [r[0] for r in db.execute(f"SELECT device_id FROM {table}")]
            assert left == ["other-1"], table
        assert [r[0] for r in db.execute("SELECT asset_id FROM assets")] == ["other-1"]
        comment = db.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                             "WHERE datname = current_database()").fetchone()[0]
        assert comment.startswith("prognos demo database")


def test_demo_refuses_a_database_it_did_not_create():
    with World(broker=False) as w, psycopg.connect(w.settings.dsn, autocommit=True) as db:
        _fleet(db)
        before = _counts(db)
        with pytest.raises(NotDemoDatabase):
            _reset(db)
        with pytest.raises(NotDemoDatabase):
            ensure_database(w.settings)
        # the command itself stops before touching anything (no broker, no migration, no reset)
        with pytest.raises(SystemExit, match="not created by `prognos demo`"):
            main(["--database", w.settings.db_name, "--mqtt-port", "1"])
        assert _counts(db) == before
