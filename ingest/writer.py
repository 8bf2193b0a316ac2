"""Commit one ingest batch in one transaction: telemetry rows, the outbox row, dead letters,
state events, rollup marks and the worker's counters.

Exactly-once in the database: the natural key (device_id, time) is unique. The fast path is a
plain binary COPY into ``telemetry``; if it hits a unique violation (a redelivered or resent
reading), the savepoint is rolled back and the batch goes through a staging table merged with
``INSERT ... ON CONFLICT DO NOTHING RETURNING``, so the outbox lists exactly the keys stored.
After a conflict the writer stays on the staging path until a batch merges without
duplicates (redelivery comes in runs), then returns to the fast path.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg import errors as pg_errors

from ingest.events import apply_events
from ingest.parse import StateEvent
from prognos.logs import event

log = logging.getLogger("prognos.ingest")

_TYPES = ["timestamptz", "text", "float4[]"]
_COPY_DIRECT = "COPY telemetry (time, device_id, vals) FROM STDIN (FORMAT BINARY)"
_COPY_STAGE = "COPY ingest_stage (time, device_id, vals) FROM STDIN (FORMAT BINARY)"
_STAGE_DDL = ("CREATE TEMP TABLE IF NOT EXISTS ingest_stage "
              "(time timestamptz, device_id text, vals real[]) ON COMMIT DELETE ROWS")
_MERGE = ("INSERT INTO telemetry (time, device_id, vals) SELECT time, device_id, vals "
          "FROM ingest_stage ON CONFLICT DO NOTHING RETURNING device_id, time")


@dataclass
class Batch:
    """What the writer thread collected: parsed rows (deduplicated within the batch), refused
    messages and state events."""

    rows: list[tuple[datetime, str, list]] = field(default_factory=list)
    dead: list[tuple] = field(default_factory=list)     # (topic, client_id, reason, detail, payload)
    events: list[tuple[StateEvent, str]] = field(default_factory=list)
    received: int = 0
    duplicates_in_batch: int = 0
    oldest_receive: float = 0.0


@dataclass
class WriteResult:
    stored: int
    duplicates: int
    events: int
    staged: bool


class TelemetryWriter:
    """Writes batches over one autocommit connection (transactions are explicit)."""

    def __init__(self, conn: psycopg.Connection, worker: str, *, stats_every_s: float = 1.0):
        self.conn = conn
        self.worker = worker
        self.stats_every_s = stats_every_s
        self.staging = False
        self._last_stats = 0.0
        self._pending = {"received": 0, "stored": 0, "duplicates": 0, "dead_lettered": 0, "events": 0}
        conn.execute(
            "INSERT INTO ingest_stats (worker) VALUES (%s) ON CONFLICT (worker) DO UPDATE "
            "SET started_at = now(), updated_at = now()", (worker,))

    def write(self, batch: Batch, *, queue_depth: int = 0) -> WriteResult:
        conn = self.conn
        keys: list[tuple[str, datetime]] | None = None
        staged = False
        with conn.transaction():
            cur = conn.cursor()
            if batch.rows:
                if not self.staging:
                    try:
                        with conn.transaction():
                            self._copy(cur, _COPY_DIRECT, batch.rows)
                        keys = None                      # every row stored
                    except pg_errors.UniqueViolation:
                        self.staging = True
                        event(log, "duplicates_detected", worker=self.worker, rows=len(batch.rows))
                if self.staging:
                    staged = True
                    keys = self._merge(cur, batch.rows)
                    if len(keys) == len(batch.rows):
                        self.staging = False             # a clean run: back to the fast path
                if keys is None:
                    devices = [r[1] for r in batch.rows]
                    times = [r[0] for r in batch.rows]
                else:
                    devices = [k[0] for k in keys]
                    times = [k[1] for k in keys]
                if times:
                    cur.execute(
                        "INSERT INTO ingest_batches (committed_at, device_ids, times, min_time, max_time) "
                        "VALUES (clock_timestamp(), %s, %s, %s, %s)", (devices, times, min(times), max(times)))
                    minutes = sorted({t.replace(second=0, microsecond=0) for t in times})
                    cur.execute(
                        "INSERT INTO rollup_dirty (bucket, worker) SELECT unnest(%s::timestamptz[]), %s "
                        "ON CONFLICT DO NOTHING", (minutes, self.worker))
                stored = len(times)
            else:
                stored = 0
            if batch.dead:
                cur.executemany(
                    "INSERT INTO dead_letters (topic, client_id, reason, detail, payload) "
                    "VALUES (%s, %s, %s, %s, %s)", batch.dead)
            n_events = apply_events(cur, batch.events) if batch.events else 0
            duplicates = len(batch.rows) - stored + batch.duplicates_in_batch
            p = dict(self._pending)       # counted only once the transaction commits
            p["received"] += batch.received
            p["stored"] += stored
            p["duplicates"] += duplicates
            p["dead_lettered"] += len(batch.dead)
            p["events"] += n_events
            now = time.monotonic()
            flushed = now - self._last_stats >= self.stats_every_s
            if flushed:
                lag = max(0.0, time.time() - batch.oldest_receive) if batch.oldest_receive else 0.0
                self._write_stats(cur, p, lag, queue_depth)
        if flushed:
            self._pending = dict.fromkeys(p, 0)
            self._last_stats = now
        else:
            self._pending = p
        return WriteResult(stored, duplicates, n_events, staged)

    def flush_stats(self, queue_depth: int = 0) -> None:
        """Write pending counters now (idle timer, shutdown)."""
        with self.conn.transaction():
            self._write_stats(self.conn.cursor(), self._pending, None, queue_depth)
        self._pending = dict.fromkeys(self._pending, 0)
        self._last_stats = time.monotonic()

    def _write_stats(self, cur, p: dict, lag: float | None, queue_depth: int) -> None:
        cur.execute(
            "UPDATE ingest_stats SET received = received + %s, stored = stored + %s, "
            "duplicates = duplicates + %s, dead_lettered = dead_lettered + %s, events = events + %s, "
            "lag_s = coalesce(%s, lag_s), queue_depth = %s, updated_at = now() WHERE worker = %s",
            (p["received"], p["stored"], p["duplicates"], p["dead_lettered"], p["events"],
             lag, queue_depth, self.worker))

    def _copy(self, cur, sql: str, rows) -> None:
        with cur.copy(sql) as copy:
            copy.set_types(_TYPES)
            for row in rows:
                copy.write_row(row)

    def _merge(self, cur, rows) -> list[tuple[str, datetime]]:
        cur.execute(_STAGE_DDL)                  # per session; cheap when it exists
        self._copy(cur, _COPY_STAGE, rows)
        cur.execute(_MERGE)
        return cur.fetchall()
