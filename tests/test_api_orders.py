"""Service orders over HTTP against the real database: the planner queue (filters, order,
pagination), one order with history, status transitions by role, the repair and first-time
fix recorded on completion, planner-opened orders, clear 404/409/422."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests import seed
from service_api.auth import create_token

NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture(scope="module")
def tokens(settings):
    import psycopg

    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        return {role: {"Authorization": f"Bearer {create_token(conn, f'orders-{role}', role)}"}
                for role in ("viewer", "planner", "technician", "admin")}


@pytest.fixture
def fleet(db, uid):
    """A model, a customer with two sites, three assets (gold, platinum, no contract)."""
    m, c = f"M-{uid}", f"C-{uid}"
    seed.add_model(db, m)
    seed.add_customer(db, c, [f"{c}-S0", f"{c}-S1"])
    seed.add_asset(db, f"A1-{uid}", m, c, f"{c}-S0", tier="gold")
    seed.add_asset(db, f"A2-{uid}", m, c, f"{c}-S1", tier="platinum")
    seed.add_asset(db, f"A3-{uid}", m, c, f"{c}-S1", tier=None)
    return {"model": m, "customer": c, "assets": [f"A{i}-{uid}" for i in (1, 2, 3)]}


def test_queue_filters_sort_and_pagination(client, tokens, db, fleet):
    a1, a2, a3 = fleet["assets"]
    t0 = NOW - timedelta(hours=10)
    ids = {
        "p2_late": seed.add_order(db, a1, "bearing_wear", priority=2, opened_at=t0,
                                  respond_by=t0 + timedelta(hours=8)),
        "p2_early": seed.add_order(db, a2, "bearing_wear", priority=2, sla_tier="platinum",
                                   opened_at=t0, respond_by=t0 + timedelta(hours=4)),
        "p1": seed.add_order(db, a1, "seal_leak", priority=1, opened_at=t0,
                             respond_by=t0 + timedelta(hours=24)),
        "prev": seed.add_order(db, a3, "electrical", kind="preventive", priority=4, sla_tier=None,
                               opened_at=t0),
        "done": seed.add_order(db, a2, "seal_leak", status="completed", priority=1,
                               sla_tier="platinum", opened_at=t0, closed_at=NOW),
    }
    q = {"model": fleet["model"]}
    r = client.get("/api/v1/service-orders", params=q, headers=tokens["viewer"])
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 5
    order = [o["order_id"] for o in body["items"]]
    # priority first, then respond_by (nulls last), then age
    assert order.index(ids["p1"]) < order.index(ids["p2_early"]) < order.index(ids["p2_late"])
    assert order[-1] == ids["prev"]

    live = client.get("/api/v1/service-orders", headers=tokens["viewer"],
                      params={**q, "status": ["approved", "scheduled"]}).json()
    assert live["count"] == 4 and ids["done"] not in [o["order_id"] for o in live["items"]]
    pred = client.get("/api/v1/service-orders", headers=tokens["viewer"],
                      params={**q, "kind": "predictive", "status": "approved"}).json()
    assert pred["count"] == 3
    site = client.get("/api/v1/service-orders", headers=tokens["viewer"],
                      params={"site": f"{fleet['customer']}-S1"}).json()
    assert {o["order_id"] for o in site["items"]} == {ids["p2_early"], ids["prev"], ids["done"]}
    tier = client.get("/api/v1/service-orders", headers=tokens["viewer"],
                      params={**q, "tier": "platinum"}).json()
    assert {o["order_id"] for o in tier["items"]} == {ids["p2_early"], ids["done"]}
    prio = client.get("/api/v1/service-orders", headers=tokens["viewer"],
                      params={**q, "priority": [1, 4]}).json()
    assert {o["order_id"] for o in prio["items"]} == {ids["p1"], ids["prev"], ids["done"]}
    first = client.get("/api/v1/service-orders", headers=tokens["viewer"],
                       params={**q, "limit": 2}).json()
    rest = client.get("/api/v1/service-orders", headers=tokens["viewer"],
                      params={**q, "limit": 2, "offset": 2}).json()
    assert [o["order_id"] for o in first["items"] + rest["items"]] == order[:4]
    beyond = client.get("/api/v1/service-orders", headers=tokens["viewer"],
                        params={**q, "offset": 100}).json()
    assert beyond["items"] == [] and beyond["count"] == 5
    o = next(x for x in body["items"] if x["order_id"] == ids["p2_early"])
    assert (o["asset_id"], o["site_id"], o["customer_id"], o["sla_tier"]) == (
        a2, f"{fleet['customer']}-S1", fleet["customer"], "platinum")


@pytest.mark.parametrize("params", [
    {"status": "bogus"}, {"priority": 9}, {"limit": 0}, {"limit": 501}, {"offset": -1},
    {"kind": "scheduled"}, {"model": ""}, {"site": "a\x01b"},
])
def test_queue_rejects_bad_filters(client, tokens, params):
    r = client.get("/api/v1/service-orders", params=params, headers=tokens["viewer"])
    assert r.status_code == 422, r.text


def test_unknown_order_is_404(client, tokens):
    assert client.get("/api/v1/service-orders/999999999", headers=tokens["viewer"]).status_code == 404
    r = client.patch("/api/v1/service-orders/999999999", headers=tokens["planner"],
                     json={"status": "scheduled", "scheduled_for": NOW.isoformat()})
    assert r.status_code == 404
    assert client.get("/api/v1/service-orders/abc", headers=tokens["viewer"]).status_code == 422


def test_full_life_cycle_with_roles_history_and_repair(client, tokens, db, fleet):
    a1 = fleet["assets"][0]
    opened = NOW - timedelta(hours=6)
    oid = seed.add_order(db, a1, "bearing_wear", opened_at=opened, priority=2,
                         respond_by=opened + timedelta(hours=8), predicted_mttr_h=5.0)
    url = f"/api/v1/service-orders/{oid}"
    when = (NOW + timedelta(days=1)).isoformat()

    # viewers and technicians may not schedule; a planner may
    assert client.patch(url, headers=tokens["viewer"], json={"status": "scheduled",
                                                             "scheduled_for": when}).status_code == 403
    assert client.patch(url, headers=tokens["technician"],
                        json={"status": "scheduled", "scheduled_for": when}).status_code == 403
    assert client.patch(url, headers=tokens["planner"], json={"status": "scheduled"}).status_code == 422
    # a technician cannot start an order that is not scheduled yet
    assert client.patch(url, headers=tokens["technician"], json={"status": "in_progress"}).status_code == 409
    r = client.patch(url, headers=tokens["planner"],
                     json={"status": "scheduled", "scheduled_for": when, "assignee": "tech-7",
                           "note": "parts ordered", "at": (opened + timedelta(hours=1)).isoformat()})
    assert r.status_code == 200, r.text
    o = r.json()
    assert o["status"] == "scheduled" and o["assignee"] == "tech-7"
    assert o["scheduled_for"].startswith(when[:19])
    # re-prioritise without a transition; technicians may not
    assert client.patch(url, headers=tokens["technician"], json={"priority": 1}).status_code == 403
    assert client.patch(url, headers=tokens["planner"],
                        json={"priority": 1, "at": (opened + timedelta(hours=2)).isoformat()}
                        ).json()["priority"] == 1
    # the planner may not start or complete
    assert client.patch(url, headers=tokens["planner"], json={"status": "in_progress"}).status_code == 403

    arrived = NOW - timedelta(hours=3)
    # a change cannot be dated before the previous one
    assert client.patch(url, headers=tokens["technician"],
                        json={"status": "in_progress", "at": opened.isoformat()}).status_code == 422
    r = client.patch(url, headers=tokens["technician"],
                     json={"status": "in_progress", "at": arrived.isoformat()})
    assert r.status_code == 200 and r.json()["status"] == "in_progress"
    # completing needs first_time_fix; cannot complete before work started
    assert client.patch(url, headers=tokens["technician"], json={"status": "completed"}).status_code == 422
    r = client.patch(url, headers=tokens["technician"],
                     json={"status": "completed", "first_time_fix": True,
                           "at": (arrived - timedelta(hours=1)).isoformat()})
    assert r.status_code == 422
    done_at = NOW - timedelta(minutes=30)
    # the as-found report: grades of the model's modes only, and only when completing
    for bad in ({"bearing_wear": "rusty"}, {"flux_capacitor": "good"}, {"Bearing": "good"}, ["good"]):
        r = client.patch(url, headers=tokens["technician"],
                         json={"status": "completed", "first_time_fix": False, "at": done_at.isoformat(),
                               "as_found": bad})
        assert r.status_code == 422, (bad, r.text)
    assert client.patch(url, headers=tokens["technician"],
                        json={"status": "on_hold", "reason": "waiting_parts",
                              "as_found": {"seal_leak": "good"}}).status_code == 422
    found = {"bearing_wear": "failed", "seal_leak": "worn", "electrical": "good"}
    r = client.patch(url, headers=tokens["technician"],
                     json={"status": "completed", "first_time_fix": False, "at": done_at.isoformat(),
                           "as_found": found})
    assert r.status_code == 200, r.text
    assert db.execute("SELECT detail->'as_found', detail->>'recorded_by' FROM repairs WHERE order_id = %s",
                      (oid,)).fetchone() == (found, "technician:orders-technician")
    o = r.json()
    assert o["status"] == "completed" and o["first_time_fix"] is False
    assert datetime.fromisoformat(o["closed_at"]) == done_at
    assert [(h["from_status"], h["to_status"]) for h in o["history"]] == [
        (None, "approved"), ("approved", "scheduled"), ("scheduled", "scheduled"),
        ("scheduled", "in_progress"), ("in_progress", "completed")]
    assert [h["reason"] for h in o["history"]][1:] == ["planner", "planning", "planner", "planner"]
    assert o["history"][1]["actor"] == "planner:orders-planner"
    assert "parts ordered" in o["history"][1]["note"] and "tech-7" in o["history"][1]["note"]
    [rep] = o["repairs"]
    assert rep["duration_h"] == pytest.approx(2.5) and rep["first_time_fix"] is False
    assert rep["as_found"] == found
    assert rep["kind"] == "predictive" and rep["mode"] == "bearing_wear"
    # a completed order is final
    assert client.patch(url, headers=tokens["admin"], json={"status": "cancelled"}).status_code == 409
    assert client.patch(url, headers=tokens["admin"], json={"priority": 3}).status_code == 409
    detail = client.get(url, headers=tokens["viewer"]).json()
    assert detail["status"] == "completed" and len(detail["history"]) == 5


def test_cancel_and_validation(client, tokens, db, fleet):
    a3 = fleet["assets"][2]
    oid = seed.add_order(db, a3, "seal_leak", opened_at=NOW - timedelta(hours=1), sla_tier=None)
    url = f"/api/v1/service-orders/{oid}"
    assert client.patch(url, headers=tokens["planner"], json={}).status_code == 422
    assert client.patch(url, headers=tokens["planner"], json={"bogus": 1}).status_code == 422
    assert client.patch(url, headers=tokens["planner"],
                        json={"status": "cancelled", "at": (NOW + timedelta(days=1)).isoformat()}
                        ).status_code == 422
    assert client.patch(url, headers=tokens["planner"],
                        json={"status": "cancelled", "at": (NOW - timedelta(days=1)).isoformat()}
                        ).status_code == 422
    assert client.patch(url, headers=tokens["planner"],
                        json={"status": "cancelled", "first_time_fix": True}).status_code == 422
    assert client.patch(url, headers=tokens["technician"], json={"status": "cancelled"}).status_code == 403
    # cancelling needs a reason code
    assert client.patch(url, headers=tokens["planner"], json={"status": "cancelled"}).status_code == 422
    assert client.patch(url, headers=tokens["planner"],
                        json={"status": "cancelled", "reason": "bogus"}).status_code == 422
    r = client.patch(url, headers=tokens["planner"],
                     json={"status": "cancelled", "reason": "duplicate", "note": "see 17"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["closed_at"]
    assert r.json()["reason"] == "duplicate" and r.json()["history"][-1]["note"] == "see 17"
    assert db.execute("SELECT count(*) FROM repairs WHERE order_id = %s", (oid,)).fetchone()[0] == 0


def test_planner_opens_preventive_order(client, tokens, db, fleet):
    a2 = fleet["assets"][1]  # platinum: 4 h response
    opened = NOW - timedelta(hours=1)
    body = {"asset_id": a2, "mode": "electrical", "kind": "preventive", "priority": 2,
            "opened_at": opened.isoformat(), "note": "annual inspection"}
    assert client.post("/api/v1/service-orders", headers=tokens["technician"], json=body).status_code == 403
    r = client.post("/api/v1/service-orders", headers=tokens["planner"], json=body)
    assert r.status_code == 201, r.text
    o = r.json()
    assert o["sla_tier"] == "platinum" and o["status"] == "approved" and o["kind"] == "preventive"
    assert datetime.fromisoformat(o["respond_by"]) == opened + timedelta(hours=4)
    assert o["history"][0]["note"] == "annual inspection"
    again = client.post("/api/v1/service-orders", headers=tokens["planner"], json=body)
    assert again.status_code == 409 and str(o["order_id"]) in again.json()["detail"]
    for bad in ({**body, "asset_id": "no-such-asset"}, {**body, "mode": "no_such_mode"},
                {**body, "kind": "predictive"}, {**body, "priority": 0}):
        assert client.post("/api/v1/service-orders", headers=tokens["planner"], json=bad).status_code == 422
