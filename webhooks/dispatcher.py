"""The webhook dispatcher: delivers due outbox rows, retrying with exponential backoff.

``Dispatcher(settings).start()`` runs it in a daemon thread (``prognos api`` does so in its
lifespan when ``settings.webhook_dispatch`` is on); ``run_once()`` does one pass and returns
how many deliveries it attempted (tests and the loop use it).

>>> import random
>>> [backoff(a, base=2, cap=60, rng=random.Random(0)) <= min(60, 2 * 2 ** a) for a in range(8)]
[True, True, True, True, True, True, True, True]
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from datetime import datetime, timedelta, timezone

import httpx
import psycopg

from orders import events
from prognos.config import Settings
from prognos.logs import event
from webhooks import outbox
from webhooks.signing import HEADER, sign

log = logging.getLogger("prognos.webhooks")
BATCH = 50
PRUNE_EVERY_S = 3600.0


def backoff(attempts: int, *, base: float, cap: float, rng: random.Random = random) -> float:
    """Seconds to wait after the ``attempts``-th failure: full jitter over
    ``[0, min(cap, base * 2**attempts)]`` (spreads retries of many deliveries apart)."""
    return rng.uniform(0, min(cap, base * 2 ** min(attempts, 30)))


def body_of(d: dict) -> bytes:
    return json.dumps(
        {"id": d["event_id"], "type": d["type"], "at": d["at"].isoformat(),
         "order_id": d["order_id"], "data": d["payload"]},
        separators=(",", ":"), default=str,
    ).encode()


class Dispatcher:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._http = httpx.Client(timeout=settings.webhook_timeout_s, follow_redirects=False)

    def run_once(self, conn: psycopg.Connection) -> int:
        """Claim due deliveries, POST each, record the outcome; one transaction."""
        s = self.settings
        with conn.transaction():
            due = outbox.claim(conn, BATCH)
            for d in due:
                body = body_of(d)
                headers = {"Content-Type": "application/json", HEADER: sign(d["secret"], body),
                           "Prognos-Event-Id": str(d["event_id"]),
                           "Prognos-Event-Type": d["type"], "User-Agent": "prognos-webhooks/1"}
                status, error = None, ""
                try:
                    r = self._http.post(d["url"], content=body, headers=headers)
                    status = r.status_code
                    error = "" if 200 <= status < 300 else f"HTTP {status}"
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                if not error:
                    outbox.delivered(conn, d, status)
                    event(log, "webhook_delivered", event_id=d["event_id"],
                          subscription=d["subscription_id"], attempts=d["attempts"] + 1)
                    continue
                attempts = d["attempts"] + 1
                next_at = None
                if attempts < s.webhook_max_attempts:
                    next_at = datetime.now(timezone.utc) + timedelta(seconds=backoff(
                        attempts, base=s.webhook_backoff_base_s, cap=s.webhook_backoff_cap_s))
                outbox.retry(conn, d, status=status, error=error, next_at=next_at)
                event(log, "webhook_failed" if next_at is None else "webhook_retry",
                      level=logging.WARNING, event_id=d["event_id"],
                      subscription=d["subscription_id"], attempts=attempts, error=error[:200])
        return len(due)

    def prune(self, conn: psycopg.Connection) -> int:
        """Apply the order events' retention (:func:`orders.events.prune`)."""
        days = self.settings.event_retention_days
        n = events.prune(conn, datetime.now(timezone.utc) - timedelta(days=days))
        event(log, "order_events_pruned", deleted=n, retention_days=days)
        return n

    def run(self) -> None:
        """Deliver until stopped, pruning old events hourly; survives database outages
        (reconnects)."""
        next_prune = 0.0
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.settings.dsn, autocommit=True) as conn:
                    while not self._stop.is_set():
                        if time.monotonic() >= next_prune:
                            self.prune(conn)
                            next_prune = time.monotonic() + PRUNE_EVERY_S
                        if self.run_once(conn) < BATCH:
                            self._stop.wait(self.settings.webhook_poll_s)
            except psycopg.Error as exc:
                event(log, "webhook_dispatcher_db_error", level=logging.WARNING,
                      error=type(exc).__name__, detail=str(exc)[:200])
                self._stop.wait(5.0)

    def start(self) -> "Dispatcher":
        self._thread = threading.Thread(target=self.run, name="webhook-dispatcher", daemon=True)
        self._thread.start()
        event(log, "webhook_dispatcher_started")
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._http.close()
