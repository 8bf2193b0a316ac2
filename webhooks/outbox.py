"""The webhook tables' owner: subscriptions, and the outbox of deliveries (migration 0015).

``enqueue`` runs inside ``orders.events.emit``'s transaction; ``claim`` / ``delivered`` /
``retry`` are the dispatcher's; the rest serves the ``/api/v1/webhooks`` routes.
"""

from __future__ import annotations

import secrets
from datetime import datetime

import psycopg
from psycopg.rows import dict_row

SUBSCRIPTION_COLUMNS = "subscription_id, url, events, description, created_at, disabled_at"


def enqueue(conn: psycopg.Connection, event_id: int, type: str) -> int:
    """Queue event ``event_id`` for every live subscription that wants ``type``."""
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO webhook_deliveries (subscription_id, event_id)
               SELECT subscription_id, %s FROM webhook_subscriptions
               WHERE disabled_at IS NULL AND %s = ANY(events)""",
            (event_id, type),
        )
        return cur.rowcount


def create_subscription(conn: psycopg.Connection, url: str, events: list[str],
                        description: str = "") -> dict:
    """A new subscription with a fresh signing secret (returned here, and only here)."""
    secret = secrets.token_urlsafe(32)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"""INSERT INTO webhook_subscriptions (url, events, secret, description)
                VALUES (%s, %s, %s, %s) RETURNING {SUBSCRIPTION_COLUMNS}, secret""",
            (url, sorted(set(events)), secret, description),
        )
        return cur.fetchone()


def list_subscriptions(conn: psycopg.Connection) -> list[dict]:
    """Live subscriptions with their delivery counts (never the secret)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"""SELECT {', '.join('s.' + c.strip() for c in SUBSCRIPTION_COLUMNS.split(','))},
                       count(d.event_id) FILTER (WHERE d.delivered_at IS NOT NULL)::int AS delivered,
                       count(d.event_id) FILTER (WHERE d.delivered_at IS NULL
                                                   AND d.failed_at IS NULL)::int AS pending,
                       count(d.event_id) FILTER (WHERE d.failed_at IS NOT NULL)::int AS failed
                FROM webhook_subscriptions s
                LEFT JOIN webhook_deliveries d USING (subscription_id)
                WHERE s.disabled_at IS NULL
                GROUP BY s.subscription_id ORDER BY s.subscription_id"""
        )
        return cur.fetchall()


def disable_subscription(conn: psycopg.Connection, subscription_id: int) -> bool:
    """Stop a subscription: nothing new is queued for it and its pending deliveries stop."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE webhook_subscriptions SET disabled_at = now()
               WHERE subscription_id = %s AND disabled_at IS NULL""",
            (subscription_id,),
        )
        return cur.rowcount == 1


def claim(conn: psycopg.Connection, limit: int) -> list[dict]:
    """Due deliveries, locked for this transaction (others skip them): event, URL, secret."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """SELECT d.subscription_id, d.event_id, d.attempts, s.url, s.secret,
                      e.type, e.at, e.order_id, e.payload
               FROM webhook_deliveries d
               JOIN webhook_subscriptions s USING (subscription_id)
               JOIN order_events e ON e.id = d.event_id
               WHERE d.delivered_at IS NULL AND d.failed_at IS NULL
                 AND d.next_attempt_at <= now() AND s.disabled_at IS NULL
               ORDER BY d.next_attempt_at, d.event_id
               LIMIT %s
               FOR UPDATE OF d SKIP LOCKED""",
            (limit,),
        )
        return cur.fetchall()


def delivered(conn: psycopg.Connection, d: dict, status: int) -> None:
    conn.execute(
        """UPDATE webhook_deliveries SET attempts = attempts + 1, delivered_at = now(),
               last_status = %s, last_error = NULL
           WHERE subscription_id = %s AND event_id = %s""",
        (status, d["subscription_id"], d["event_id"]),
    )


def retry(conn: psycopg.Connection, d: dict, *, status: int | None, error: str,
          next_at: datetime | None) -> None:
    """Record a failed attempt; ``next_at`` None means give up (the delivery is failed)."""
    conn.execute(
        """UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = %s,
               last_error = %s, next_attempt_at = COALESCE(%s, next_attempt_at),
               failed_at = CASE WHEN %s::timestamptz IS NULL THEN now() END
           WHERE subscription_id = %s AND event_id = %s""",
        (status, error[:500], next_at, next_at, d["subscription_id"], d["event_id"]),
    )
