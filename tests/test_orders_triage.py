"""orders.triage against the real database: tier rules and risk approve or wait for a planner,
daily limits per site keep the excess proposed, and a storm of one model's fleet raises one
fleet incident that a planner confirms or dismisses."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from orders import state, triage
from tests import seed

T0 = datetime(2026, 4, 6, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def limits(db):
    """Change triage settings for one test; put them back afterwards."""
    before = triage.settings(db)

    def set_(**kw):
        db.execute("UPDATE triage_settings SET " + ", ".join(f"{k} = %({k})s" for k in kw), kw)
    yield set_
    set_(**{k: v for k, v in before.items() if k != "id"})


def _fleet(db, uid, tiers, sites=1):
    m, c = f"M-{uid}", f"C-{uid}"
    seed.add_model(db, m)
    seed.add_customer(db, c, [f"{c}-S{i}" for i in range(sites)])
    assets = []
    for i, tier in enumerate(tiers):
        a = f"A{i}-{uid}"
        seed.add_asset(db, a, m, c, f"{c}-S{i % sites}", tier=tier)
        assets.append(a)
    return m, assets


def _propose(db, asset, tier, risk, at=T0, mode="bearing_wear"):
    [oid] = state.open_or_update(db, [state.OrderProposal(
        asset_id=asset, mode=mode, kind="predictive", opened_at=at, priority=3, sla_tier=tier, risk=risk,
        predicted_failure_at=at + timedelta(days=3), predicted_mttr_h=6.0, respond_by=at + timedelta(hours=8))])
    return db.execute("SELECT status, reason FROM service_orders WHERE order_id = %s", (oid,)).fetchone(), oid


def test_tier_rule_and_risk(db, uid):
    tiers = ["platinum", "gold", "silver", "silver", "bronze", None]
    _, assets = _fleet(db, uid, tiers, sites=6)
    risks = [0.9, 0.95, 0.96, 0.92, 1.0, 1.0]
    got = [_propose(db, a, t, r, at=T0 + timedelta(hours=2 * i))[0]     # hours apart: no storm
           for i, (a, t, r) in enumerate(zip(assets, tiers, risks))]
    assert got == [("approved", "auto_approved"), ("approved", "auto_approved"), ("approved", "auto_approved"),
                   ("proposed", "needs_review"), ("proposed", "needs_review"), ("proposed", "needs_review")]
    hist = db.execute(
        "SELECT h.from_status, h.to_status, h.actor, h.reason FROM service_order_history h JOIN service_orders o "
        "USING (order_id) WHERE o.asset_id = %s ORDER BY h.id", (assets[0],)).fetchall()
    assert hist == [(None, "proposed", "detection", "opened"), ("proposed", "approved", "triage", "auto_approved")]


def test_site_limit_keeps_the_excess_proposed(db, uid, limits):
    limits(site_daily_limit=2)
    _, assets = _fleet(db, uid, ["platinum"] * 4)
    got = [_propose(db, a, "platinum", 0.95, at=T0 + timedelta(hours=i))[0] for i, a in enumerate(assets[:3])]
    assert got == [("approved", "auto_approved")] * 2 + [("proposed", "rate_limited")]
    # a day later the limit has room again
    assert _propose(db, assets[3], "platinum", 0.95, at=T0 + timedelta(hours=25))[0] == ("approved", "auto_approved")


def test_storm_raises_one_fleet_incident(db, uid, limits):
    limits(storm_share=0.3, storm_min_assets=3, storm_window_h=1.0)
    model, assets = _fleet(db, uid, ["bronze"] * 10, sites=5)
    out = [_propose(db, a, "bronze", 0.95, at=T0 + timedelta(minutes=10 * i)) for i, a in enumerate(assets[:5])]
    # 4 of 10 within the hour is more than 30 %: the 4th raises the incident, the 5th joins it
    assert [o[0] for o in out] == [("proposed", "needs_review")] * 3 + [("proposed", "storm")] * 2
    [(inc, n, fleet, status)] = db.execute(
        "SELECT incident_id, assets, fleet_size, status FROM fleet_incidents WHERE model_id = %s", (model,)).fetchall()
    assert (n, fleet, status) == (5, 10, "open")
    members = [r[0] for r in db.execute(
        "SELECT order_id FROM service_orders WHERE fleet_incident_id = %s ORDER BY order_id", (inc,))]
    assert members == [o[1] for o in out]          # the still-proposed orders of the window joined it
    # dismissed: a data or firmware problem, every proposal is rejected as a false alarm
    triage.resolve_incident(db, inc, "dismissed", actor="planner:p", note="firmware 2.1 offset",
                            at=T0 + timedelta(hours=2))
    assert {r for r in db.execute("SELECT status, reason FROM service_orders WHERE fleet_incident_id = %s",
                                    (inc,))} == {("rejected", "false_alarm")}
    with pytest.raises(state.Conflict):
        triage.resolve_incident(db, inc, "confirmed", actor="planner:p")
    # later crossings are judged afresh
    assert _propose(db, assets[0], "bronze", 0.95, at=T0 + timedelta(hours=5))[0] == ("proposed", "needs_review")
