"""Hypothesis fuzz of every GET route's query parameters and of the PATCH body: whatever comes
in, the answer is a 2xx, 401/403/404/409 or a 422, never a 500."""

from __future__ import annotations

import json
import os

from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from tests import seed
from service_api.app import create_app
from service_api.auth import create_token

ROUTES = ["/api/v1/service-orders", "/api/v1/assets", "/api/v1/uptime", "/api/v1/mttr",
          "/api/v1/sla", "/api/v1/ingest/stats", "/api/v1/sla/at-risk", "/api/v1/sla/clocks",
          "/api/v1/fleet-incidents", "/api/v1/service-figures", "/api/v1/service-figures/renewals",
          "/api/v1/service-orders/vocabulary"]
PARAMS = ["status", "kind", "priority", "model", "site", "customer", "tier", "asset", "mode",
          "limit", "offset", "from", "to", "at", "group_by", "include_planned", "min_risk",
          "sort", "lifecycle", "in_warranty", "with_open_orders", "horizon_h", "sensor",
          "resolution", "recent", "hours", "days", "state", "live"]

texts = st.text(max_size=40)
numbers = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True))
times = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                     timezones=st.sampled_from([None, timezone.utc, timezone(timedelta(hours=-13))]))
values = st.one_of(texts, numbers.map(str), times.map(lambda t: t.isoformat()),
                   st.sampled_from(["open", "true", "false", "asset", "1h", "raw", "risk", "",
                                    "0", "-1", "NaN", "1e309", "2026-13-01", "\x00"]))
queries = st.lists(st.tuples(st.sampled_from(PARAMS), values), max_size=6)

FUZZ = hsettings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 60)), deadline=None,
                 derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def client(settings):
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def env(settings):
    """An asset with a device and a live order, and an admin token."""
    import psycopg

    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        m, c = "FZ-M", "FZ-C"
        seed.add_model(conn, m)
        seed.add_customer(conn, c, ["FZ-S"])
        seed.add_asset(conn, "FZ-A", m, c, "FZ-S", device_id="fz-d")
        order = seed.add_order(conn, "FZ-A", "bearing_wear",
                               opened_at=datetime.now(timezone.utc) - timedelta(days=1))
        token = create_token(conn, "fuzz", "admin")
    return {"auth": {"Authorization": f"Bearer {token}"}, "order": order}


def _ok(r) -> None:
    assert r.status_code < 500, (r.status_code, r.request.url, r.text[:500])


@FUZZ
@given(route=st.sampled_from(ROUTES + ["/api/v1/assets/FZ-A", "/api/v1/assets/FZ-A/telemetry",
                                       "/api/v1/service-orders/1"]),
       query=queries)
def test_get_routes_never_500(client, env, route, query):
    _ok(client.get(route, params=query, headers=env["auth"]))


@FUZZ
@given(path=st.one_of(texts, numbers.map(str)))
def test_path_ids_never_500(client, env, path):
    for prefix in ("/api/v1/assets/", "/api/v1/service-orders/"):
        _ok(client.get(prefix + quote(path, safe=""), headers=env["auth"]))


json_values = st.one_of(st.none(), st.booleans(), numbers, texts,
                        times.map(lambda t: t.isoformat()),
                        st.sampled_from(["scheduled", "in_progress", "completed", "cancelled"]))


@FUZZ
@given(body=st.dictionaries(
    st.sampled_from(["status", "scheduled_for", "assignee", "priority", "first_time_fix", "at",
                     "note", "extra"]), json_values, max_size=5))
def test_patch_body_never_500(client, env, body):
    r = client.patch(f"/api/v1/service-orders/{env['order']}", content=json.dumps(body),
                     headers={**env["auth"], "Content-Type": "application/json"})
    _ok(r)


@FUZZ
@given(body=st.dictionaries(
    st.sampled_from(["asset_id", "mode", "kind", "priority", "opened_at", "respond_by",
                     "scheduled_for", "assignee", "note"]),
    st.one_of(json_values, st.sampled_from(["FZ-A", "bearing_wear", "seal_leak", "preventive"])),
    max_size=9))
def test_create_order_body_never_500(client, env, body):
    r = client.post("/api/v1/service-orders", content=json.dumps(body),
                    headers={**env["auth"], "Content-Type": "application/json"})
    _ok(r)
