"""Ingest throughput and health figures, as the ingest part reports them.

``ingest.stats.read_stats(conn)`` is the source when the ingest package provides it, else the
rows of the ``ingest_stats`` table (migration 0004); ``available: false`` without that table.
"""

from __future__ import annotations

import importlib
from typing import Any

from psycopg.rows import dict_row
from fastapi import APIRouter

from service_api.deps import DbConn, requires

router = APIRouter(prefix="/ingest", tags=["ingest"])


def _reader():
    try:
        return importlib.import_module("ingest.stats").read_stats
    except (ImportError, AttributeError):
        return None


@router.get("/stats", dependencies=[requires("fleet")])
def ingest_stats(conn: DbConn) -> dict[str, Any]:
    """Whatever the ingest part measures (messages, rows, batches, dead letters, lag)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT to_regclass('ingest_stats') IS NOT NULL AS present")
        if not cur.fetchone()["present"]:
            return {"available": False, "source": None, "stats": {}}
        read_stats = _reader()
        if read_stats is not None:
            return {"available": True, "source": "ingest.stats", "stats": read_stats(conn)}
        cur.execute("SELECT * FROM ingest_stats ORDER BY 1 LIMIT 100")
        return {"available": True, "source": "ingest_stats", "stats": {"rows": cur.fetchall()}}
