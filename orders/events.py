"""Order events for integrations: ``emit(conn, type, order_id, payload)``.

Call it in the same transaction as the change it reports (``orders.state`` does, for every
transition), so an event exists exactly when the change committed. The event goes into
``order_events`` (its ``id`` is the event id receivers deduplicate on) and is queued, in the
same transaction, for every webhook subscription that wants its type
(:func:`webhooks.outbox.enqueue`); the dispatcher delivers it later, at least once.

>>> sorted(TYPES)[:3]
['order.approved', 'order.cancelled', 'order.completed']
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from webhooks.outbox import enqueue

TYPES = frozenset({
    "order.proposed", "order.approved", "order.rejected", "order.scheduled", "order.started",
    "order.on_hold", "order.resumed", "order.completed", "order.cancelled",
    "order.sla_warning", "order.sla_breached",
})


def emit(conn: psycopg.Connection, type: str, order_id: int,
         payload: dict[str, Any] | None = None) -> int:
    """Record event ``type`` of order ``order_id`` with ``payload`` (JSON-able); returns the
    event id. Raises ValueError for an unknown type."""
    if type not in TYPES:
        raise ValueError(f"unknown order event type {type!r} (one of {', '.join(sorted(TYPES))})")
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO order_events (type, order_id, payload) VALUES (%s, %s, %s) RETURNING id",
            (type, order_id, Jsonb(payload or {})),
        )
        event_id = cur.fetchone()[0]
    enqueue(conn, event_id, type)
    return event_id
