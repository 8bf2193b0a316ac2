"""API hardening against the real database: customer tokens see only their own customer's
assets, orders, uptime, MTTR, SLA and exports; tokens expire by default and record their last
use; failed authentication is throttled per client address; every error has one body shape;
CSV exports stream the orders, availability and SLA tables."""

from __future__ import annotations

import csv
import io
import time
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from service_api.app import create_app
from service_api.auth import authenticate, create_token, list_tokens
from tests import seed

NOW = datetime.now(timezone.utc)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def two_customers(settings):
    """Customers HA (assets HA-1, HA-2) and HB (HB-1), each with an order, downtime and a
    repair; a customer token for HA."""
    import psycopg

    with psycopg.connect(settings.dsn, autocommit=True) as db:
        seed.add_model(db, "HM")
        ids = {}
        for c, assets in (("HA", ["HA-1", "HA-2"]), ("HB", ["HB-1"])):
            seed.add_customer(db, c, [f"{c}-S"])
            for a in assets:
                seed.add_asset(db, a, "HM", c, f"{c}-S", device_id=f"dev-{a}")
                ids[a] = seed.add_order(db, a, "bearing_wear", opened_at=NOW - timedelta(hours=5),
                                        respond_by=NOW + timedelta(hours=2))
                seed.add_downtime(db, a, NOW - timedelta(days=2), NOW - timedelta(days=2, hours=-3))
                seed.add_repair(db, a, "bearing_wear", NOW - timedelta(days=2, hours=-1),
                                NOW - timedelta(days=2, hours=-3))
        token = create_token(db, "ha-portal", "customer", customer_id="HA")
    return {"orders": ids, "auth": bearer(token)}


def test_customer_token_sees_only_its_own_customer(client, two_customers, viewer):
    me, orders = two_customers["auth"], two_customers["orders"]
    r = client.get("/api/v1/me", headers=me).json()
    assert (r["role"], r["customer_id"], r["rights"]) == ("customer", "HA", ["read"])

    listed = client.get("/api/v1/assets", params={"model": "HM"}, headers=me).json()
    assert {a["asset_id"] for a in listed["items"]} == {"HA-1", "HA-2"}
    # asking for another customer still gives only its own
    other = client.get("/api/v1/assets", params={"customer": "HB"}, headers=me).json()
    assert {a["customer_id"] for a in other["items"]} <= {"HA"}
    assert client.get("/api/v1/assets/HA-1", headers=me).status_code == 200
    for path in ("/api/v1/assets/HB-1", "/api/v1/assets/HB-1/telemetry?sensor=vibration_rms",
                 "/api/v1/assets/HB-1/prediction", f"/api/v1/service-orders/{orders['HB-1']}",
                 f"/api/v1/service-orders/{orders['HB-1']}/history",
                 f"/api/v1/sla/orders/{orders['HB-1']}"):
        r = client.get(path, headers=me)
        assert r.status_code == 404 and r.json()["error"] == "not_found", path
        assert client.get(path, headers=viewer).status_code != 404  # staff see it

    queue = client.get("/api/v1/service-orders", params={"model": "HM"}, headers=me).json()
    assert {o["order_id"] for o in queue["items"]} == {orders["HA-1"], orders["HA-2"]}
    up = client.get("/api/v1/uptime", params={"model": "HM", "group_by": "customer"},
                    headers=me).json()
    assert [row["key"] for row in up["rows"]] == ["HA"] and up["fleet"]["assets"] == 2
    mttr = client.get("/api/v1/mttr", params={"model": "HM"}, headers=me).json()
    assert [g["repairs"] for g in mttr["by_model"]] == [2]
    assert {o["asset_id"] for o in mttr["open_orders"]} == {"HA-1", "HA-2"}
    sla = client.get("/api/v1/sla", params={"customer": "HB"}, headers=me).json()
    assert {g["key"] for g in sla["by_customer"]} == {"HA"}
    assert {o["customer_id"] for o in sla["at_risk"]} == {"HA"}
    text = client.get("/api/v1/export/orders.csv", headers=me).text
    assert {row["customer_id"] for row in csv.DictReader(io.StringIO(text))} == {"HA"}

    # nothing fleet-wide, nothing that changes an order
    assert client.get("/api/v1/ingest/stats", headers=me).status_code == 403
    r = client.patch(f"/api/v1/service-orders/{orders['HA-1']}", headers=me,
                     json={"status": "cancelled"})
    assert r.status_code == 403


def test_customer_tokens_need_a_customer(client, db, settings):
    with pytest.raises(ValueError, match="customer_id"):
        create_token(db, "x", "customer")
    with pytest.raises(ValueError, match="customer_id"):
        create_token(db, "x", "viewer", customer_id="HA")
    admin = bearer(create_token(db, "hard-admin", "admin"))
    r = client.post("/api/v1/tokens", headers=admin, json={"name": "p", "role": "customer"})
    assert r.status_code == 422 and "customer_id" in r.json()["detail"]
    r = client.post("/api/v1/tokens", headers=admin,
                    json={"name": "p", "role": "customer", "customer_id": "nobody"})
    assert r.status_code == 422 and "no customer" in r.json()["detail"]


def test_tokens_expire_by_default_and_record_last_use(client, db, uid):
    token = create_token(db, f"exp-{uid}", "viewer", default_days=90)
    never = create_token(db, f"never-{uid}", "viewer", default_days=0)
    rows = {t["name"]: t for t in list_tokens(db)}
    left = rows[f"exp-{uid}"]["expires_at"] - datetime.now(timezone.utc)
    assert timedelta(days=89.9) < left <= timedelta(days=90)
    assert rows[f"never-{uid}"]["expires_at"] is None
    assert rows[f"exp-{uid}"]["last_used_at"] is None
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    used = {t["name"]: t for t in list_tokens(db)}[f"exp-{uid}"]["last_used_at"]
    assert used is not None and datetime.now(timezone.utc) - used < timedelta(minutes=1)
    assert never  # (used only for its row)
    # over HTTP the default comes from the setting (90 days)
    admin = bearer(create_token(db, f"adm-{uid}", "admin"))
    r = client.post("/api/v1/tokens", headers=admin, json={"name": f"h-{uid}", "role": "viewer"})
    exp = datetime.fromisoformat(r.json()["expires_at"])
    assert timedelta(days=89.9) < exp - datetime.now(timezone.utc) <= timedelta(days=90)


def test_failed_authentication_is_throttled_per_address(settings, db):
    good = bearer(create_token(db, "throttle-ok", "viewer"))
    app = create_app(settings.model_copy(update={"auth_fail_limit": 3,
                                                 "auth_fail_window_s": 60,
                                                 "webhook_dispatch": False}))
    with TestClient(app) as c:
        assert c.get("/api/v1/me", headers=good).status_code == 200
        for _ in range(3):
            assert c.get("/api/v1/me", headers=bearer("prg_guess")).status_code == 401
        r = c.get("/api/v1/me", headers=good)  # this address is now refused, even a good token
        assert r.status_code == 429 and 55 <= int(r.headers["Retry-After"]) <= 60
        assert r.json()["error"] == "too_many_requests"
        assert c.get("/health").status_code == 200  # no token, no throttle
    with TestClient(app, client=("10.1.2.3", 5000)) as other:  # another address is not blocked
        assert other.get("/api/v1/me", headers=good).status_code == 200


@pytest.mark.parametrize("method,path,body,status", [
    ("get", "/api/v1/assets", None, 401),
    ("get", "/api/v1/assets?limit=0", None, 422),
    ("get", "/api/v1/assets/nope", None, 404),
    ("get", "/api/v1/service-orders?priority=9", None, 422),
    ("post", "/api/v1/tokens", {"name": "x", "role": "viewer"}, 403),
    ("delete", "/api/v1/assets", None, 405),
])
def test_every_error_has_one_body_shape(client, viewer, method, path, body, status):
    headers = {} if status == 401 else viewer
    r = client.request(method, path, headers=headers, json=body)
    assert r.status_code == status
    b = r.json()
    assert set(b) == {"status", "error", "detail", "errors"} and b["status"] == status
    assert isinstance(b["detail"], str) and b["detail"]
    assert bool(b["errors"]) == (status == 422)


def test_csv_exports(client, viewer, two_customers):
    r = client.get("/api/v1/export/orders.csv", headers=viewer)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    mine = {int(x["order_id"]): x for x in rows if x["asset_id"].startswith("H")}
    assert set(mine) == set(two_customers["orders"].values())
    assert all(x["status"] == "approved" and x["opened_at"].endswith("Z") for x in mine.values())

    up = list(csv.DictReader(io.StringIO(
        client.get("/api/v1/export/uptime.csv", headers=viewer,
                   params={"group_by": "customer"}).text)))
    ha = next(x for x in up if x["customer"] == "HA")
    assert int(ha["assets"]) == 2 and float(ha["downtime_h"]) == pytest.approx(6.0)
    assert up[-1]["customer"] == ""  # the fleet row
    sla = list(csv.DictReader(io.StringIO(
        client.get("/api/v1/export/sla.csv", headers=viewer).text)))
    assert {x["group"] for x in sla} == {"tier", "customer"}
    assert any(x["group"] == "customer" and x["key"] == "HB" for x in sla)


def test_recording_a_tokens_use_never_blocks_another_request(settings, db, uid):
    """Many requests with one token at once (a page loads four resources in parallel; a team
    shares a token): while one request holds the token row to record its use, the others
    authenticate without waiting for it."""
    import psycopg

    token = create_token(db, f"shared-{uid}", "viewer")
    with psycopg.connect(settings.dsn) as holder, psycopg.connect(settings.dsn) as other:
        assert authenticate(holder, token) is not None  # records the use; lock held, no commit
        other.execute("SET statement_timeout = '2s'")
        assert authenticate(other, token).name == f"shared-{uid}"
        holder.rollback()


def test_more_concurrent_requests_than_threads_and_connections(settings, db, uid):
    """80 requests at once against a pool of 2 connections (and 40 worker threads): all are
    served; none starves waiting for a connection in a thread the others need."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from tests.live import serve

    token = bearer(create_token(db, f"crowd-{uid}", "viewer"))

    async def crowd(url: str) -> list[int]:
        async with httpx.AsyncClient(base_url=url, headers=token, timeout=60,
                                     limits=httpx.Limits(max_connections=100)) as c:
            rs = await asyncio.gather(*(c.get("/api/v1/service-orders?limit=5")
                                        for _ in range(80)))
        return [r.status_code for r in rs]

    with serve(settings.model_copy(update={"db_pool_max": 2, "webhook_dispatch": False})) as url:
        t = time.monotonic()
        with ThreadPoolExecutor(1) as ex:  # its own event loop, whatever runs in this thread
            codes = ex.submit(asyncio.run, crowd(url)).result()
    assert codes == [200] * 80 and time.monotonic() - t < 25
