"""Reading one sensor's series for charts: raw readings for short windows, bucketed
(mean/min/max/count) for long ones.

Buckets come from the ingest rollup tables when migration 0004 created them (see ``ROLLUPS``),
else from ``time_bucket`` over the raw hypertable, which gives the same figures, only slower.

>>> pick_resolution(timedelta(hours=1)), pick_resolution(timedelta(days=1))
('raw', '1m')
>>> pick_resolution(timedelta(days=30)), pick_resolution(timedelta(days=400))
('1h', '1d')
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg
from psycopg.rows import dict_row

BUCKETS = {"1m": timedelta(minutes=1), "1h": timedelta(hours=1), "1d": timedelta(days=1)}
RAW_LIMIT = 20_000

# Resolution -> (rollup table written by ingest in migration 0004, its bucket width).
ROLLUPS: dict[str, tuple[str, timedelta]] = {
    "1m": ("telemetry_1m", timedelta(minutes=1)),
    "1h": ("telemetry_1h", timedelta(hours=1)),
    "1d": ("telemetry_1h", timedelta(hours=1)),
}

RAW_SQL = """
SELECT time AS t, vals[%(i)s] AS avg, vals[%(i)s] AS min, vals[%(i)s] AS max, 1 AS n
FROM telemetry
WHERE device_id = %(d)s AND time >= %(s)s AND time < %(e)s AND vals[%(i)s] IS NOT NULL
ORDER BY time LIMIT %(lim)s
"""

BUCKETED_SQL = """
SELECT time_bucket(%(w)s, time) AS t, avg(vals[%(i)s]::float8) AS avg,
       min(vals[%(i)s]) AS min, max(vals[%(i)s]) AS max, count(vals[%(i)s])::int AS n
FROM telemetry
WHERE device_id = %(d)s AND time >= %(s)s AND time < %(e)s AND vals[%(i)s] IS NOT NULL
GROUP BY 1 ORDER BY 1
"""

# Rollup rows are re-bucketed to the wanted width; means are weighted by their counts.
ROLLUP_SQL = """
SELECT time_bucket(%(w)s, bucket) AS t,
       sum(avg_vals[%(i)s]::float8 * cnt[%(i)s]) / NULLIF(sum(cnt[%(i)s]), 0) AS avg,
       min(min_vals[%(i)s]) AS min, max(max_vals[%(i)s]) AS max, sum(cnt[%(i)s])::int AS n
FROM {table}
WHERE device_id = %(d)s AND bucket >= time_bucket(%(rw)s, %(s)s::timestamptz)
  AND bucket < %(e)s AND cnt[%(i)s] > 0
GROUP BY 1 ORDER BY 1
"""


def pick_resolution(span: timedelta) -> str:
    if span <= timedelta(hours=1):  # at most 3,600 readings at the fastest rate (1 Hz)
        return "raw"
    if span <= timedelta(days=2):
        return "1m"
    if span <= timedelta(days=120):
        return "1h"
    return "1d"


def merge_points(a: list[dict], b: list[dict]) -> list[dict]:
    """Concatenate two time-ordered bucket lists, combining a bucket present in both
    (count-weighted mean, min of mins, max of maxes, summed counts).

    >>> t = datetime(2026, 1, 1)
    >>> merge_points([{"t": t, "avg": 1.0, "min": 0.0, "max": 2.0, "n": 1}],
    ...              [{"t": t, "avg": 4.0, "min": 3.0, "max": 5.0, "n": 3}])[0]["avg"]
    3.25
    """
    if a and b and a[-1]["t"] == b[0]["t"]:
        x, y = a[-1], b[0]
        n = x["n"] + y["n"]
        both = {"t": x["t"], "avg": (x["avg"] * x["n"] + y["avg"] * y["n"]) / n,
                "min": min(x["min"], y["min"]), "max": max(x["max"], y["max"]), "n": n}
        return [*a[:-1], both, *b[1:]]
    return [*a, *b]


def _rollup_table(cur, resolution: str) -> tuple[str, timedelta] | None:
    entry = ROLLUPS.get(resolution)
    if entry is None:
        return None
    cur.execute("SELECT to_regclass(%s) IS NOT NULL AS present", (entry[0],))
    return entry if cur.fetchone()["present"] else None


def read_series(
    conn: psycopg.Connection,
    device_id: str,
    position: int,
    start: datetime,
    end: datetime,
    resolution: str = "auto",
) -> dict:
    """Points of sensor ``position`` (0-based, as in ``sensors.position``) of a device in
    [start, end), as ``{"resolution", "source", "points": [{t, avg, min, max, n}]}``.

    Bucketed series read the rollup table up to its last rolled-up bucket and compute the
    rest (minutes not yet rolled up) with ``time_bucket`` over the raw rows, so recent
    readings are never missing. Buckets are aligned to their width (UTC), so the first one may
    hold readings from just before ``start``."""
    if resolution == "auto":
        resolution = pick_resolution(end - start)
    p = {"i": position + 1, "d": device_id, "s": start, "e": end, "lim": RAW_LIMIT}
    with conn.cursor(row_factory=dict_row) as cur:
        if resolution == "raw":
            cur.execute(RAW_SQL, p)
            return {"resolution": "raw", "source": "telemetry", "points": cur.fetchall()}
        p["w"] = BUCKETS[resolution]
        rollup = _rollup_table(cur, resolution)
        if rollup is None:
            cur.execute(BUCKETED_SQL, p)
            return {"resolution": resolution, "source": "telemetry", "points": cur.fetchall()}
        table, width = rollup
        cur.execute(
            f"SELECT max(bucket) AS last FROM {table} WHERE device_id = %(d)s AND bucket < %(e)s",
            p,
        )
        last = cur.fetchone()["last"]
        rolled: list[dict] = []
        if last is not None and last + width > start:
            cur.execute(ROLLUP_SQL.format(table=table),
                        {**p, "rw": width, "e": min(end, last + width)})
            rolled = cur.fetchall()
            p["s"] = max(start, last + width)
        source = f"{table}+telemetry" if rolled else "telemetry"
        cur.execute(BUCKETED_SQL, p)
        return {"resolution": resolution, "source": source,
                "points": merge_points(rolled, cur.fetchall())}
