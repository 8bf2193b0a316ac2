"""Migrations on a fresh database: all applied in order and recorded, idempotent, a changed
applied file refused; the schema has the hypertable and the service vocabulary."""

import psycopg
import pytest
from psycopg import sql

from ops.world import World
from schemas.migrate import MigrationError, available, migrate


def test_applied_in_order_and_recorded(db):
    rows = db.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    assert [r[1] for r in rows] == [p.name for p in available()]


def test_rerun_applies_nothing(settings):
    assert migrate(settings.dsn) == []


def test_telemetry_is_a_hypertable_and_edition_known(db):
    assert db.execute("SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name = 'telemetry'").fetchone()[0] == 1
    assert db.execute("SHOW timescaledb.license").fetchone()[0] in ("apache", "timescale")


def test_service_vocabulary_in_the_schema(db):
    cols = {(t, c) for t, c in db.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'")}
    for needed in [("assets", "lifecycle_stage"), ("assets", "warranty_end"), ("sla_tiers", "response_h"),
                   ("sla_tiers", "restore_h"), ("service_orders", "predicted_mttr_h"), ("service_orders", "kind"),
                   ("failure_modes", "mttr_h"), ("repairs", "first_time_fix"), ("downtime", "planned"),
                   ("devices", "password_hash")]:
        assert needed in cols


def test_one_live_order_per_asset_and_mode(db, uid):
    db.execute("INSERT INTO product_models VALUES (%s, 'm', 'pump')", (f"M{uid}",))
    db.execute("INSERT INTO customers VALUES (%s, 'c')", (f"c{uid}",))
    db.execute("INSERT INTO sites VALUES (%s, %s, 's')", (f"s{uid}", f"c{uid}"))
    db.execute("INSERT INTO assets (asset_id, serial, model_id, customer_id, site_id, install_date) "
               "VALUES (%s, %s, %s, %s, %s, '2025-01-01')", (f"a{uid}", f"S{uid}", f"M{uid}", f"c{uid}", f"s{uid}"))
    ins = ("INSERT INTO service_orders (asset_id, mode, kind, priority, opened_at, status) "
           "VALUES (%s, 'fouling', 'predictive', 3, now(), %s)")
    db.execute(ins, (f"a{uid}", "completed"))
    db.execute(ins, (f"a{uid}", "approved"))
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(ins, (f"a{uid}", "scheduled"))


def test_changed_migration_is_refused(settings):
    with World(settings.model_copy(update={"state_dir": settings.state_dir.parent.parent}), broker=False) as w:
        with psycopg.connect(w.settings.dsn, autocommit=True) as conn:
            conn.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = '0001'")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            migrate(w.settings.dsn)
