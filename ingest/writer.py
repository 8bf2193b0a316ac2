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
from datetime import datetime, timedelta, timezone

import psycopg
from psycopg import errors as pg_errors

from ingest.copy_binary import encode_rows
from ingest.events import apply_events
from ingest.parse import StateEvent
from prognos.logs import event

log = logging.getLogger("prognos.ingest")

_COPY_DIRECT = "COPY telemetry (time, device_id, vals) FROM STDIN (FORMAT BINARY)"
_COPY_STAGE = "COPY ingest_stage (time, device_id, vals) FROM STDIN (FORMAT BINARY)"
_STAGE_DDL = ("CREATE TEMP TABLE IF NOT EXISTS ingest_stage "
              "(time timestamptz, device_id text, vals real[]) ON COMMIT DELETE ROWS")
# Merge the staged rows; the outbox lists exactly the keys the INSERT stored.
_MERGE = """
WITH ins AS (
    INSERT INTO telemetry (time, device_id, vals)
    SELECT time, device_id, vals FROM ingest_stage
    ON CONFLICT DO NOTHING RETURNING device_id, time
), ob AS (
    INSERT INTO ingest_batches (committed_at, device_ids, times, min_time, max_time)
    SELECT clock_timestamp(), array_agg(device_id), array_agg(time), min(time), max(time)
    FROM ins HAVING count(*) > 0
    RETURNING cardinality(times) AS n
)
SELECT coalesce((SELECT n FROM ob), 0)
"""
_OUTBOX = ("INSERT INTO ingest_batches (committed_at, device_ids, times, min_time, max_time) "
           "VALUES (clock_timestamp(), %s::text[], %s::timestamptz[], %s, %s)")
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)
_MINUTE_US = 60_000_000


@dataclass
class Batch:
    """What the writer thread collected: parsed rows (deduplicated within the batch), refused
    messages and state events."""

    #: (pg microseconds, device_id, vals, RFC 3339 text of the time)
    rows: list[tuple[int, str, list, str]] = field(default_factory=list)
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
        staged = False
        stored = 0
        with conn.transaction():
            cur = conn.cursor()
            if batch.rows:
                if not self.staging:
                    try:
                        with conn.transaction():
                            with cur.copy(_COPY_DIRECT) as copy:
                                copy.write(encode_rows((r[0], r[1], r[2]) for r in batch.rows))
                            stored = len(batch.rows)
                            cur.execute(_OUTBOX, _outbox_params(batch.rows))
                    except pg_errors.UniqueViolation:
                        stored = 0
                        self.staging = True
                        event(log, "duplicates_detected", worker=self.worker, rows=len(batch.rows))
                if self.staging:
                    staged = True
                    cur.execute(_STAGE_DDL)               # per session; cheap once it exists
                    with cur.copy(_COPY_STAGE) as copy:
                        copy.write(encode_rows((r[0], r[1], r[2]) for r in batch.rows))
                    stored = cur.execute(_MERGE).fetchone()[0]
                    if stored == len(batch.rows):
                        self.staging = False             # a clean run: back to the fast path
                if stored:
                    minutes = sorted({r[0] // _MINUTE_US for r in batch.rows})
                    cur.execute(
                        "INSERT INTO rollup_dirty (bucket, worker) SELECT unnest(%s::timestamptz[]), %s "
                        "ON CONFLICT DO NOTHING",
                        ([_PG_EPOCH + timedelta(minutes=m) for m in minutes], self.worker))
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



def _outbox_params(rows) -> tuple:
    """Array literals built from the texts (device ids match [A-Za-z0-9_.-], times are RFC 3339):
    one parameter each, parsed by the server, instead of thousands of adapted elements."""
    devices = '{"' + '","'.join([r[1] for r in rows]) + '"}'
    times = "{" + ",".join([r[3] for r in rows]) + "}"
    lo = min(rows, key=lambda r: r[0])[3]
    hi = max(rows, key=lambda r: r[0])[3]
    return devices, times, lo, hi
