"""Uptime/availability/MTBF, MTTR and SLA standing checked against figures computed by hand
(the formulas are in the docstrings of service_api/routes/uptime.py, mttr.py and sla.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests import seed


def h(base: datetime, hours: float) -> datetime:
    return base + timedelta(hours=hours)


def test_uptime_availability_mtbf_mttr(client, viewer, db, uid):
    w0 = datetime(2025, 2, 1, tzinfo=timezone.utc)
    m, c = f"UM-{uid}", f"UC-{uid}"
    seed.add_model(db, m)
    seed.add_customer(db, c, [f"{c}-S"])
    x, y, z = f"UX-{uid}", f"UY-{uid}", f"UZ-{uid}"
    seed.add_asset(db, x, m, c, f"{c}-S", install_date=w0.date() - timedelta(days=30))
    seed.add_asset(db, y, m, c, f"{c}-S", install_date=(w0 + timedelta(days=3)).date())  # 72 h in
    seed.add_asset(db, z, m, c, f"{c}-S", install_date=(w0 + timedelta(days=30)).date())  # later
    seed.add_asset(db, f"UD-{uid}", m, c, f"{c}-S", lifecycle_stage="decommissioned")
    seed.add_downtime(db, x, h(w0, -5), h(w0, 2))                    # clipped: 2 h, not a failure
    seed.add_downtime(db, x, h(w0, 10), h(w0, 14))                   # 4 h, failure
    seed.add_downtime(db, x, h(w0, 50), h(w0, 52), planned=True)     # planned
    seed.add_downtime(db, x, h(w0, 51), h(w0, 55))                   # overlaps planned: union 50..55
    seed.add_downtime(db, x, h(w0, 95), None)                        # still down: 5 h, failure
    seed.add_downtime(db, y, h(w0, 80), h(w0, 81))                   # 1 h, failure
    seed.add_downtime(db, z, h(w0, 10), h(w0, 11))                   # before install: ignored
    q = {"from": w0.isoformat(), "to": h(w0, 100).isoformat(), "model": m}

    r = client.get("/api/v1/uptime", params={**q, "group_by": "asset"}, headers=viewer)
    assert r.status_code == 200, r.text
    rows = {row["key"]: row for row in r.json()["rows"]}
    assert set(rows) == {x, y}
    rx = rows[x]
    assert rx["exposure_h"] == pytest.approx(100)
    assert rx["downtime_h"] == pytest.approx(16)        # 2 + 4 + 5 + 5
    assert rx["availability"] == pytest.approx(0.84)
    assert rx["failures"] == 3
    assert rx["mtbf_h"] == pytest.approx(84 / 3)
    assert rx["mttr_h"] == pytest.approx(15 / 3)        # unplanned union 2 + 4 + 4 + 5
    ry = rows[y]
    assert ry["exposure_h"] == pytest.approx(28) and ry["availability"] == pytest.approx(27 / 28)
    assert list(rows) == [x, y]                          # worst availability first

    fleet = client.get("/api/v1/uptime", params=q, headers=viewer).json()
    assert fleet["rows"][0]["key"] == m
    for agg in (fleet["fleet"], fleet["rows"][0]):
        assert agg["assets"] == 2
        assert agg["availability"] == pytest.approx(111 / 128)
        assert agg["mtbf_h"] == pytest.approx(111 / 4)
        assert agg["mttr_h"] == pytest.approx(16 / 4)

    unplanned = client.get("/api/v1/uptime", headers=viewer,
                           params={**q, "group_by": "asset", "include_planned": "false"}).json()
    ux = next(row for row in unplanned["rows"] if row["key"] == x)
    assert ux["downtime_h"] == pytest.approx(15) and ux["availability"] == pytest.approx(0.85)

    nothing = client.get("/api/v1/uptime", headers=viewer,
                         params={**q, "model": f"none-{uid}"}).json()
    assert nothing["rows"] == [] and nothing["fleet"]["assets"] == 0
    assert client.get("/api/v1/uptime", headers=viewer,
                      params={"from": h(w0, 5).isoformat(), "to": w0.isoformat()}).status_code == 422
    assert client.get("/api/v1/uptime", headers=viewer, params={"group_by": "planet"}).status_code == 422


def test_mttr_actual_and_predicted(client, viewer, db, uid):
    w0 = datetime(2025, 4, 1, tzinfo=timezone.utc)
    m, assets = f"MM-{uid}", [f"MA{i}-{uid}" for i in range(3)]
    seed.add_small_fleet(db, m, f"MC-{uid}", assets)
    seed.add_repair(db, assets[0], "bearing_wear", h(w0, 10), h(w0, 12))
    seed.add_repair(db, assets[1], "bearing_wear", h(w0, 20), h(w0, 24))
    seed.add_repair(db, assets[2], "bearing_wear", h(w0, 30), h(w0, 39), first_time_fix=False)
    seed.add_repair(db, assets[0], "seal_leak", h(w0, 40), h(w0, 41))
    seed.add_repair(db, assets[1], "bearing_wear", h(w0, -50), h(w0, -1))   # before the window
    seed.add_order(db, assets[0], "bearing_wear", opened_at=h(w0, 60), predicted_mttr_h=7.0,
                   priority=1)
    seed.add_order(db, assets[1], "seal_leak", opened_at=h(w0, 60), priority=2)
    seed.add_order(db, assets[2], "electrical", opened_at=h(w0, 60), priority=3)
    seed.add_order(db, assets[2], "seal_leak", opened_at=h(w0, 1), status="completed",
                   closed_at=h(w0, 2))

    r = client.get("/api/v1/mttr", headers=viewer, params={
        "from": w0.isoformat(), "to": h(w0, 100).isoformat(), "model": m})
    assert r.status_code == 200, r.text
    body = r.json()
    by_mode = {g["mode"]: g for g in body["by_mode"]}
    bw = by_mode["bearing_wear"]
    assert bw["repairs"] == 3 and bw["mttr_h"] == pytest.approx(5.0)
    assert bw["median_h"] == pytest.approx(4.0) and bw["p90_h"] == pytest.approx(8.0)
    assert bw["first_time_fix_rate"] == pytest.approx(2 / 3) and bw["nominal_mttr_h"] == 6.0
    assert by_mode["seal_leak"]["mttr_h"] == pytest.approx(1.0)
    [model] = body["by_model"]
    assert model["model_id"] == m and model["repairs"] == 4 and model["mttr_h"] == pytest.approx(4.0)
    assert model["first_time_fix_rate"] == pytest.approx(0.75) and model["mode"] is None
    orders = {o["mode"]: o for o in body["open_orders"]}
    assert set(orders) == {"bearing_wear", "seal_leak", "electrical"}
    assert orders["bearing_wear"]["expected_mttr_h"] == 7.0
    assert orders["seal_leak"]["expected_mttr_h"] == pytest.approx(1.0)       # actual
    assert orders["electrical"]["expected_mttr_h"] == pytest.approx(3.0)      # nominal
    assert [o["priority"] for o in body["open_orders"]] == [1, 2, 3]
    corrective = client.get("/api/v1/mttr", headers=viewer, params={
        "from": w0.isoformat(), "to": h(w0, 100).isoformat(), "model": m, "kind": "predictive"})
    assert corrective.json()["by_mode"] == []


def test_sla_standing_and_at_risk(client, viewer, db, uid):
    w0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
    m = f"SM-{uid}"
    c1, c2 = f"SC1-{uid}", f"SC2-{uid}"
    seed.add_model(db, m)
    seed.add_customer(db, c1, [f"{c1}-S"])
    seed.add_customer(db, c2, [f"{c2}-S"])
    g, p = f"SG-{uid}", f"SP-{uid}"
    seed.add_asset(db, g, m, c1, f"{c1}-S", tier="gold")        # 8 h response, 24 h restore
    seed.add_asset(db, p, m, c2, f"{c2}-S", tier="platinum")    # 4 h response, 8 h restore
    seed.add_order(db, g, "bearing_wear", sla_tier="gold", opened_at=w0, status="completed",
                   closed_at=h(w0, 20), first_time_fix=True,
                   history=[(h(w0, 5), "in_progress"), (h(w0, 20), "completed")])
    seed.add_order(db, g, "seal_leak", sla_tier="gold", opened_at=h(w0, 10), status="completed",
                   closed_at=h(w0, 30), first_time_fix=False,
                   history=[(h(w0, 19), "in_progress"), (h(w0, 30), "completed")])
    seed.add_order(db, g, "electrical", sla_tier="gold", opened_at=h(w0, 12), status="cancelled",
                   closed_at=h(w0, 13))
    seed.add_order(db, g, "electrical", sla_tier="gold", opened_at=h(w0, -10), status="completed",
                   closed_at=h(w0, -1))
    late = seed.add_order(db, p, "bearing_wear", sla_tier="platinum", opened_at=h(w0, 90))
    soon = seed.add_order(db, p, "seal_leak", sla_tier="platinum", opened_at=h(w0, 97),
                          respond_by=h(w0, 101))
    q = {"from": w0.isoformat(), "to": h(w0, 100).isoformat(), "at": h(w0, 100).isoformat()}

    gold = client.get("/api/v1/sla", params={**q, "customer": c1}, headers=viewer)
    assert gold.status_code == 200, gold.text
    [t] = gold.json()["by_tier"]
    assert t["key"] == "gold" and t["orders"] == 2
    assert (t["responded_in_time"], t["response_breached"]) == (1, 1)
    assert (t["restored_in_time"], t["restore_breached"]) == (2, 0)
    assert t["pending"] == 0
    assert t["response_compliance_pct"] == 50.0 and t["restore_compliance_pct"] == 100.0
    assert t["compliance_pct"] == 50.0 and t["first_time_fix_rate"] == pytest.approx(0.5)
    assert gold.json()["by_customer"][0] | {"key": "gold"} == t

    plat = client.get("/api/v1/sla", params={**q, "customer": c2}, headers=viewer).json()
    [t] = plat["by_tier"]
    assert t["key"] == "platinum" and t["orders"] == 2 and t["pending"] == 1
    assert (t["response_breached"], t["restore_breached"]) == (1, 1)
    assert t["compliance_pct"] == 0.0 and t["first_time_fix_rate"] is None
    risk = {o["order_id"]: o for o in plat["at_risk"]}
    assert set(risk) == {late, soon}
    assert risk[late]["overdue"] and risk[late]["hours_left"] == pytest.approx(-6)
    assert not risk[soon]["overdue"] and risk[soon]["hours_left"] == pytest.approx(1)
    assert [o["order_id"] for o in plat["at_risk"]] == [late, soon]
    # judged earlier, nothing had breached yet and only the first order was near
    early = client.get("/api/v1/sla", headers=viewer, params={
        **q, "customer": c2, "at": h(w0, 91).isoformat(), "horizon_h": 4}).json()
    assert early["by_tier"][0]["pending"] == 2
    assert [o["order_id"] for o in early["at_risk"]] == [late]
    both = client.get("/api/v1/sla", headers=viewer, params={**q, "tier": "platinum"}).json()
    assert [t["key"] for t in both["by_tier"]] == ["platinum"]
    every = client.get("/api/v1/sla", headers=viewer, params=q).json()
    ranks = {"platinum": 1, "gold": 2, "silver": 3, "bronze": 4}
    keys = [t["key"] for t in every["by_tier"]]
    assert keys == sorted(keys, key=ranks.get) and {"gold", "platinum"} <= set(keys)
    assert client.get("/api/v1/sla", headers=viewer, params={"horizon_h": 0}).status_code == 422
