"""Order events for integrations: ``emit(conn, type, order_id, payload)``.

Call it in the same transaction as the change it reports (``orders.state`` does, for every
transition), so an event exists exactly when the change committed. The event goes into
``order_events`` (its ``id`` is the event id receivers deduplicate on) and is queued, in the
same transaction, for every webhook subscription that wants its type
(:func:`webhooks.outbox.enqueue`); the dispatcher delivers it later, at least once.

Retention: :func:`prune` deletes events older than ``settings.event_retention_days`` (90 by
default) once nothing needs them: their order is no longer live (the SLA sweep reads a live
order's events to emit each warning and breach once) and every delivery of them is settled
(delivered, or failed after its last retry). Their delivery rows go with them. The webhook
dispatcher runs it hourly.

>>> sorted(TYPES)[:3]
['order.approved', 'order.cancelled', 'order.completed']
"""

from __future__ import annotations

from datetime import datetime
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


def prune(conn: psycopg.Connection, before: datetime, batch: int = 10_000) -> int:
    """Delete the events recorded before ``before`` of orders that are no longer live and
    whose deliveries are all settled, ``batch`` rows per statement (short locks); returns how
    many were deleted."""
    total = 0
    while True:
        n = conn.execute(
            """DELETE FROM order_events WHERE id IN (
                 SELECT e.id FROM order_events e
                 WHERE e.at < %s
                   AND NOT EXISTS (SELECT 1 FROM service_orders o JOIN order_statuses s USING (status)
                                   WHERE o.order_id = e.order_id AND s.live)
                   AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                                   WHERE d.event_id = e.id AND d.delivered_at IS NULL AND d.failed_at IS NULL)
                 LIMIT %s)""", (before, batch)).rowcount
        total += n
        if n < batch:
            return total
