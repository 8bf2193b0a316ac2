"""Outbound webhooks end to end against the real database and a real local HTTP receiver:
subscriptions over the API, events from ``orders.events.emit`` queued in the same transaction,
delivered by the dispatcher that runs inside the API's lifespan, signed (HMAC-SHA256), retried
with backoff while the receiver is down, kept across an API restart, each event id arriving
once; a receiver that fails a delivery gets it again; subscriptions get only their types."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest
from fastapi.testclient import TestClient

from ops.services.common import free_port
from orders.events import TYPES, emit
from service_api.app import create_app
from service_api.auth import create_token
from webhooks.signing import HEADER, verify


class Receiver:
    """A local HTTP endpoint that records each delivery; ``fail_first`` answers 500 to the
    first delivery of every event (so each must be retried)."""

    def __init__(self, port: int, *, fail_first: bool = False):
        self.port, self.fail_first = port, fail_first
        self.received: list[dict] = []
        self.refused: list[int] = []
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> "Receiver":
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                event = json.loads(body)
                if rec.fail_first and event["id"] not in rec.refused:
                    rec.refused.append(event["id"])
                    self.send_response(500)
                    self.end_headers()
                    return
                rec.received.append({"body": body, "event": event,
                                     "headers": {k.lower(): v for k, v in self.headers.items()}})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def ids(self) -> list[int]:
        return [r["event"]["id"] for r in self.received]


@pytest.fixture(scope="module")
def fast(settings):
    """Settings for an API whose dispatcher polls and backs off quickly."""
    return settings.model_copy(update={
        "webhook_dispatch": True, "webhook_poll_s": 0.1, "webhook_backoff_base_s": 0.2,
        "webhook_backoff_cap_s": 1.0, "webhook_timeout_s": 2.0, "auth_fail_limit": 1000})


@pytest.fixture(scope="module")
def admin(settings):
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        return {"Authorization": f"Bearer {create_token(conn, 'hooks-admin', 'admin')}"}


def subscribe(client, admin, url: str, events: list[str]) -> dict:
    r = client.post("/api/v1/webhooks", headers=admin,
                    json={"url": url, "events": events, "description": "test receiver"})
    assert r.status_code == 201, r.text
    return r.json()


def emit_events(dsn: str, kinds: list[tuple[str, int]]) -> list[int]:
    with psycopg.connect(dsn) as conn:  # one transaction, as orders.state does
        ids = [emit(conn, t, oid, {"status": t.split(".")[1]}) for t, oid in kinds]
        conn.commit()
    return ids


def wait_for(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_events_survive_a_down_receiver_and_an_api_restart(fast, admin):
    port = free_port()
    receiver = Receiver(port)
    with TestClient(create_app(fast)) as client:
        sub = subscribe(client, admin, f"http://127.0.0.1:{port}/hook",
                        ["order.approved", "order.scheduled", "order.completed"])
        emitted = emit_events(fast.dsn, [("order.approved", 9001), ("order.scheduled", 9001),
                                         ("order.completed", 9001), ("order.approved", 9002)])
        # the receiver is down: deliveries fail and are rescheduled, none is lost
        with psycopg.connect(fast.dsn) as conn:
            wait_for(lambda: conn.execute(
                "SELECT min(attempts) FROM webhook_deliveries WHERE subscription_id = %s",
                (sub["subscription_id"],)).fetchone()[0] >= 2, 20, "retries while down")
    # the API (and its dispatcher) stopped with everything undelivered; more events meanwhile
    emitted += emit_events(fast.dsn, [("order.scheduled", 9002)])
    receiver.start()
    try:
        with TestClient(create_app(fast)) as client:
            wait_for(lambda: len(set(receiver.ids())) == len(emitted), 30, "all deliveries")
            time.sleep(0.5)  # nothing more arrives
            listed = client.get("/api/v1/webhooks", headers=admin).json()
    finally:
        receiver.stop()
    assert sorted(receiver.ids()) == sorted(emitted)  # every event, once per event id
    mine = next(s for s in listed if s["subscription_id"] == sub["subscription_id"])
    assert (mine["delivered"], mine["pending"], mine["failed"]) == (len(emitted), 0, 0)
    for r in receiver.received:
        h, ev = r["headers"], r["event"]
        assert verify(sub["secret"], r["body"], h[HEADER.lower()])
        assert not verify("x" * 43, r["body"], h[HEADER.lower()])
        assert h["prognos-event-id"] == str(ev["id"]) and h["prognos-event-type"] == ev["type"]
        assert ev["order_id"] in (9001, 9002) and ev["data"]["status"] == ev["type"][6:]


def test_a_failed_delivery_is_retried_and_types_are_filtered(fast, admin):
    flaky, picky = Receiver(free_port(), fail_first=True).start(), Receiver(free_port()).start()
    try:
        with TestClient(create_app(fast)) as client:
            subscribe(client, admin, f"http://127.0.0.1:{flaky.port}/", sorted(TYPES))
            subscribe(client, admin, f"http://127.0.0.1:{picky.port}/", ["order.completed"])
            emitted = emit_events(fast.dsn, [("order.proposed", 9100), ("order.completed", 9100),
                                             ("order.sla_warning", 9101)])
            wait_for(lambda: len(flaky.received) == 3 and len(picky.received) == 1, 30,
                     "deliveries")
            time.sleep(0.5)
    finally:
        flaky.stop()
        picky.stop()
    assert sorted(flaky.refused) == sorted(emitted) and sorted(flaky.ids()) == sorted(emitted)
    assert picky.ids() == [emitted[1]]


def test_subscriptions_are_admin_only_and_validated(client, admin, viewer):
    assert client.get("/api/v1/webhooks", headers=viewer).status_code == 403
    bad = client.post("/api/v1/webhooks", headers=admin,
                      json={"url": "ftp://x.example/", "events": ["order.approved"]})
    assert bad.status_code == 422 and bad.json()["error"] == "validation_error"
    bad = client.post("/api/v1/webhooks", headers=admin,
                      json={"url": "http://x.example/", "events": ["order.exploded"]})
    assert bad.status_code == 422
    sub = subscribe(client, admin, "http://127.0.0.1:9/never", ["order.approved"])
    assert "secret" not in client.get("/api/v1/webhooks", headers=admin).json()[0]
    assert client.delete(f"/api/v1/webhooks/{sub['subscription_id']}",
                         headers=admin).status_code == 204
    assert client.delete(f"/api/v1/webhooks/{sub['subscription_id']}",
                         headers=admin).status_code == 404


def test_emit_refuses_unknown_types(db):
    with pytest.raises(ValueError, match="unknown order event type"):
        emit(db, "order.exploded", 1, {})


def test_old_settled_events_of_closed_orders_are_pruned(db, fast, uid):
    """Retention: only events past the retention, of orders no longer live, with every
    delivery settled, go (with their deliveries); the rest stay."""
    from datetime import datetime, timedelta, timezone

    from orders.events import prune
    from tests import seed

    asset = f"ret-{uid}"
    seed.add_small_fleet(db, f"M-ret-{uid}", f"C-ret-{uid}", [asset])
    t0 = datetime.now(timezone.utc) - timedelta(days=100)
    live = seed.add_order(db, asset, "bearing_wear", opened_at=t0)
    closed = seed.add_order(db, asset, "seal_leak", status="cancelled", opened_at=t0, closed_at=t0,
                            history=[(t0, "cancelled")])
    sub = db.execute("INSERT INTO webhook_subscriptions (url, events, secret) VALUES "
                     "('http://127.0.0.1:9/', ARRAY['order.sla_warning'], %s) RETURNING subscription_id",
                     ("s" * 40,)).fetchone()[0]
    ids = {k: emit(db, "order.sla_warning", oid, {}) for k, oid in
           [("live", live), ("closed", closed), ("pending", closed), ("recent", closed)]}
    old = datetime.now(timezone.utc) - timedelta(days=91)
    db.execute("UPDATE order_events SET at = %s WHERE id = ANY(%s)",
               (old, [ids["live"], ids["closed"], ids["pending"]]))
    db.execute("UPDATE webhook_deliveries SET delivered_at = now() WHERE event_id = ANY(%s)",
               ([ids["live"], ids["closed"], ids["recent"]],))   # settled (any subscription)
    assert prune(db, datetime.now(timezone.utc) - timedelta(days=fast.event_retention_days)) == 1
    left = {r[0] for r in db.execute("SELECT id FROM order_events WHERE id = ANY(%s)", (list(ids.values()),))}
    assert left == {ids["live"], ids["pending"], ids["recent"]}
    assert db.execute("SELECT count(*) FROM webhook_deliveries WHERE event_id = %s",
                      (ids["closed"],)).fetchone()[0] == 0
    db.execute("DELETE FROM webhook_subscriptions WHERE subscription_id = %s", (sub,))
