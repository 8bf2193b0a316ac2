"""Incremental 1-minute and 1-hour rollups of telemetry, and retention.

TimescaleDB here is the Apache-licensed build (no continuous aggregates), so the rollups are
plain hypertables ``telemetry_1m`` / ``telemetry_1h`` (migration 0004) kept up to date by
:func:`refresh_rollups`: every ingest batch marks the minutes it stored rows in
(``rollup_dirty``, in the batch's own transaction); a refresh takes the marks of closed minutes
(older than ``settle_s``), recomputes those minutes from ``telemetry`` and then the hours they
fall in from ``telemetry_1m``, in one transaction. Marks and rows commit together, so a minute
is never left stale; a late reading marks its minute again and the next refresh redoes it.

Row shape (both tables): ``(device_id, bucket, n, cnt, avg_vals, min_vals, max_vals)``; element
``i`` of the arrays summarises ``telemetry.vals[i]`` (``cnt[i]`` non-null values; NULL
avg/min/max where ``cnt[i] = 0``); ``n`` = readings.
"""

from __future__ import annotations

import psycopg

_MINUTES = """
WITH marks AS (
    DELETE FROM rollup_dirty WHERE bucket < now() - make_interval(secs => %(settle)s)
    RETURNING bucket
), mins AS (
    SELECT DISTINCT bucket FROM marks
), per AS (
    SELECT m.bucket, t.device_id, u.i, count(*)::int AS rows, count(u.v)::int AS c,
           avg(u.v)::real AS a, min(u.v) AS mn, max(u.v) AS mx
    FROM mins m
    JOIN telemetry t ON t.time >= m.bucket AND t.time < m.bucket + interval '1 minute'
    CROSS JOIN LATERAL unnest(t.vals) WITH ORDINALITY AS u(v, i)
    GROUP BY 1, 2, 3
)
INSERT INTO telemetry_1m (device_id, bucket, n, cnt, avg_vals, min_vals, max_vals)
SELECT device_id, bucket, max(rows), array_agg(c ORDER BY i), array_agg(a ORDER BY i),
       array_agg(mn ORDER BY i), array_agg(mx ORDER BY i)
FROM per GROUP BY device_id, bucket
ON CONFLICT (device_id, bucket) DO UPDATE SET
    n = EXCLUDED.n, cnt = EXCLUDED.cnt, avg_vals = EXCLUDED.avg_vals,
    min_vals = EXCLUDED.min_vals, max_vals = EXCLUDED.max_vals
RETURNING bucket
"""

_HOURS = """
WITH hours AS (
    SELECT DISTINCT date_trunc('hour', b) AS hour FROM unnest(%(minutes)s::timestamptz[]) AS b
), src AS (
    SELECT h.hour, m.* FROM hours h
    JOIN telemetry_1m m ON m.bucket >= h.hour AND m.bucket < h.hour + interval '1 hour'
), n AS (
    SELECT hour, device_id, sum(n)::int AS n FROM src GROUP BY 1, 2
), per AS (
    SELECT s.hour, s.device_id, u.i, sum(u.c)::int AS c,
           (sum(u.a::float8 * u.c) / nullif(sum(u.c), 0))::real AS a, min(u.mn) AS mn, max(u.mx) AS mx
    FROM src s
    CROSS JOIN LATERAL unnest(s.cnt, s.avg_vals, s.min_vals, s.max_vals) WITH ORDINALITY AS u(c, a, mn, mx, i)
    GROUP BY 1, 2, 3
)
INSERT INTO telemetry_1h (device_id, bucket, n, cnt, avg_vals, min_vals, max_vals)
SELECT p.device_id, p.hour, n.n, array_agg(p.c ORDER BY p.i), array_agg(p.a ORDER BY p.i),
       array_agg(p.mn ORDER BY p.i), array_agg(p.mx ORDER BY p.i)
FROM per p JOIN n USING (hour, device_id)
GROUP BY p.device_id, p.hour, n.n
ON CONFLICT (device_id, bucket) DO UPDATE SET
    n = EXCLUDED.n, cnt = EXCLUDED.cnt, avg_vals = EXCLUDED.avg_vals,
    min_vals = EXCLUDED.min_vals, max_vals = EXCLUDED.max_vals
"""

#: One refresh at a time across all ingest processes.
_LOCK_KEY = 0x70726F67_726F6C6C & 0x7FFFFFFFFFFFFFFF


def refresh_rollups(conn: psycopg.Connection, *, settle_s: float = 70.0) -> int:
    """Recompute the marked closed minutes and their hours; returns the minute rows written
    (0 if another process holds the refresh lock). ``conn`` must be in autocommit mode."""
    with conn.transaction():
        if not conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (_LOCK_KEY,)).fetchone()[0]:
            return 0
        cur = conn.execute(_MINUTES, {"settle": float(settle_s)})
        minutes = sorted({r[0] for r in cur.fetchall()})
        if minutes:
            conn.execute(_HOURS, {"minutes": minutes})
        return cur.rowcount if minutes else 0


def apply_retention(conn: psycopg.Connection, retention_days: int) -> int:
    """Drop raw telemetry chunks entirely older than the retention; returns chunks dropped.
    The rollups are kept (they are what long windows read)."""
    rows = conn.execute(
        "SELECT drop_chunks('telemetry', older_than => now() - make_interval(days => %s))",
        (int(retention_days),)).fetchall()
    return len(rows)
