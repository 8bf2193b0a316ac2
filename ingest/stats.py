"""Ingest counters per worker (table ``ingest_stats``), for ``GET /api/v1/ingest/stats``."""

from __future__ import annotations

import psycopg

_FIELDS = ("received", "stored", "duplicates", "dead_lettered", "events")


def read_stats(conn: psycopg.Connection) -> dict:
    """Totals and per-worker rows::

        {"totals": {"received": .., "stored": .., "duplicates": .., "dead_lettered": ..,
                    "events": .., "max_lag_s": .., "workers": n},
         "workers": [{"worker": "ingest-0", "received": .., ..., "lag_s": .., "queue_depth": ..,
                      "started_at": iso, "updated_at": iso, "age_s": ..}, ...],
         "dead_letters_by_reason": {"schema": 3, ...}}
    """
    cur = conn.execute(
        "SELECT worker, received, stored, duplicates, dead_lettered, events, lag_s, queue_depth, "
        "started_at, updated_at, extract(epoch FROM now() - updated_at)::float8 "
        "FROM ingest_stats ORDER BY worker")
    workers = []
    for row in cur.fetchall():
        w = dict(zip(("worker",) + _FIELDS + ("lag_s", "queue_depth"), row[:8]))
        w["started_at"] = row[8].isoformat()
        w["updated_at"] = row[9].isoformat()
        w["age_s"] = round(row[10], 3)
        workers.append(w)
    totals = {k: sum(w[k] for w in workers) for k in _FIELDS}
    totals["max_lag_s"] = max((w["lag_s"] for w in workers), default=0.0)
    totals["workers"] = len(workers)
    reasons = dict(conn.execute(
        "SELECT reason, count(*) FROM dead_letters GROUP BY reason ORDER BY reason").fetchall())
    return {"totals": totals, "workers": workers, "dead_letters_by_reason": reasons}
