"""Versioned SQL migrations: ``schemas/migrations/NNNN_name.sql`` applied in order, each in its
own transaction, recorded in ``schema_migrations`` with a checksum (an applied file that
changed is refused). A migration may hold statements that cannot run in a transaction
(continuous aggregates): put ``-- prognos: no-transaction`` on its first line.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import psycopg

from prognos.logs import event

log = logging.getLogger("prognos.migrate")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LOCK_KEY = 7_201_911


class MigrationError(RuntimeError):
    pass


def available() -> list[Path]:
    files = sorted(MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    versions = [f.name[:4] for f in files]
    dupes = {v for v in versions if versions.count(v) > 1}
    if dupes:
        raise MigrationError(f"two migrations share version(s) {sorted(dupes)}")
    return files


def edition(conn: psycopg.Connection) -> str:
    """TimescaleDB license: 'apache' (no compression / continuous aggregates) or 'timescale'."""
    return conn.execute("SHOW timescaledb.license").fetchone()[0]


def migrate(dsn: str) -> list[str]:
    """Apply pending migrations; return the names applied."""
    applied_now = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
                version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())""")
            done = {v: c for v, c in conn.execute("SELECT version, checksum FROM schema_migrations")}
            for path in available():
                sql = path.read_text()
                version, checksum = path.name[:4], hashlib.sha256(sql.encode()).hexdigest()
                if version in done:
                    if done[version] != checksum:
                        raise MigrationError(f"{path.name} changed after it was applied; add a new migration instead")
                    continue
                try:
                    if sql.startswith("-- prognos: no-transaction"):
                        conn.execute(sql)
                        conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                                     (version, path.name, checksum))
                    else:
                        with conn.transaction():
                            conn.execute(sql)
                            conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                                         (version, path.name, checksum))
                except psycopg.Error as exc:
                    raise MigrationError(f"{path.name} failed: {exc}") from exc
                applied_now.append(path.name)
            event(log, "migrated", applied=applied_now, edition=edition(conn))
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return applied_now
