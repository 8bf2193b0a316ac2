"""orders.sla against the real database: response and restore clocks on the tier's calendar,
pause while on hold, warning and breach states, a predictive order measured against its
predicted failure, breach probability from schedule and repair-time distribution, the at-risk
list sorted by it, and sla_warning / sla_breached events emitted once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from orders import sla, state, triage
from orders.repair_time import RepairTime
from tests import seed

FRI = datetime(2026, 3, 6, 16, 0, tzinfo=timezone.utc)     # a Friday, 16:00 UTC
H = timedelta(hours=1)
P = "planner:sla"


@pytest.fixture
def assets(db, uid):
    m, c = f"M-{uid}", f"C-{uid}"
    seed.add_model(db, m)                  # bearing_wear nominal MTTR 6 h
    seed.add_customer(db, c, [f"{c}-S0"])
    out = {}
    for tier in ("platinum", "gold", "silver", "bronze"):
        out[tier] = f"{tier}-{uid}"
        seed.add_asset(db, out[tier], m, c, f"{c}-S0", tier=tier)
    return out


def _open(db, asset, tier, kind="corrective", at=FRI, **kw):
    status = "proposed" if kind == "predictive" else "approved"
    oid = state.create(db, asset_id=asset, mode="bearing_wear", kind=kind, status=status, priority=3,
                       opened_at=at, actor="detection", sla_tier=tier, **kw)
    if status == "proposed":
        triage.triage(db, oid)
    return oid


def _clock(db, oid, now):
    [c] = sla.order_clocks(db, "o.order_id = %(id)s", {"id": oid}, now)
    return c


def test_business_calendar_response_and_restore(db, assets):
    oid = _open(db, assets["silver"], "silver")           # 24 h response, 48 h restore, business days
    c = _clock(db, oid, FRI + H)
    # Fri 2 h + Mon 10 h + Tue 10 h + Wed 2 h = 24 business hours
    assert c.response.deadline == datetime(2026, 3, 11, 10, 0, tzinfo=timezone.utc)
    assert c.response.warn_at == datetime(2026, 3, 10, 16, 0, tzinfo=timezone.utc)   # 4 business hours before
    assert c.response.state == "in_progress" and c.restore.state == "in_progress"
    assert _clock(db, oid, datetime(2026, 3, 10, 17, 0, tzinfo=timezone.utc)).response.state == "nearing_breach"
    assert _clock(db, oid, datetime(2026, 3, 11, 11, 0, tzinfo=timezone.utc)).response.state == "breached"


def test_hold_pauses_and_completion_meets(db, assets):
    oid = _open(db, assets["gold"], "gold")               # 24x7: 8 h response, 24 h restore
    state.transition(db, oid, "scheduled", actor=P, changes={"scheduled_for": FRI + 2 * H}, at=FRI + H)
    state.transition(db, oid, "in_progress", actor="technician:t", at=FRI + 2 * H)
    state.transition(db, oid, "on_hold", actor="technician:t", reason="waiting_parts", at=FRI + 3 * H)
    # as of an earlier time the order is what it was then
    assert (_clock(db, oid, FRI + 0.5 * H).status, _clock(db, oid, FRI + 2.5 * H).status) == ("approved", "in_progress")
    c = _clock(db, oid, FRI + 13 * H)
    assert c.restore.state == "paused" and c.restore.paused_h == 10.0
    assert c.restore.deadline == FRI + 34 * H and c.response.state == "met"
    state.transition(db, oid, "in_progress", actor="technician:t", at=FRI + 20 * H)
    assert _clock(db, oid, FRI + 21 * H).restore.deadline == FRI + 41 * H       # 17 h on hold
    assert _clock(db, oid, FRI + 36 * H).restore.state == "nearing_breach"       # warning 6 h before
    state.complete_by_technician(db, oid, actor="technician:t", at=FRI + 38 * H, first_time_fix=True)
    c = _clock(db, oid, FRI + 50 * H)
    assert (c.response.state, c.restore.state, c.breach_probability) == ("met", "met", None)


def test_predictive_order_is_measured_against_its_predicted_failure(db, assets):
    failure = FRI + 72 * H
    oid = _open(db, assets["platinum"], "platinum", kind="predictive", risk=0.95, predicted_failure_at=failure)
    c = _clock(db, oid, FRI + H)
    assert c.status == "approved"                            # platinum: triage approved it
    assert c.restore.deadline == failure and c.restore.state == "in_progress"
    # a proposal's response clock has not started; a rejection cancels both clocks
    oid2 = _open(db, assets["bronze"], "bronze", kind="predictive", risk=0.95, predicted_failure_at=failure)
    assert _clock(db, oid2, FRI + H).response.state == "not_started"
    state.transition(db, oid2, "rejected", actor=P, reason="false_alarm", at=FRI + 2 * H)
    c2 = _clock(db, oid2, FRI + 3 * H)
    assert (c2.response.state, c2.restore.state) == ("cancelled", "cancelled")


def test_breach_probability_and_at_risk_order(db, assets):
    rt = RepairTime.lognormal(6.0)
    # pure: a visit that leaves 6 h before the deadline breaches half the time (travel aside)
    p, _ = sla.breach_probability(FRI, FRI + 10 * H, rt, visit_at=FRI + 4 * H, travel_h=0.0)
    assert p == pytest.approx(0.5, abs=0.01)
    p_late, _ = sla.breach_probability(FRI, FRI + 10 * H, rt, visit_at=FRI + 20 * H)
    p_early, _ = sla.breach_probability(FRI, FRI + 100 * H, rt, visit_at=FRI + H)
    assert p_late == 1.0 and p_early < 0.01
    # work under way for 5 h with 1 h to go is likelier to breach than the same order fresh
    p_run, _ = sla.breach_probability(FRI + 5 * H, FRI + 6 * H, rt, work_started=FRI)
    assert p_run > rt.sf(6.0)
    # the at-risk list: the order scheduled after its deadline first
    late = _open(db, assets["gold"], "gold")
    state.transition(db, late, "scheduled", actor=P, changes={"scheduled_for": FRI + 30 * H}, at=FRI + H)
    early = _open(db, assets["platinum"], "platinum")
    state.transition(db, early, "scheduled", actor=P, changes={"scheduled_for": FRI + 0.5 * H}, at=FRI + 0.2 * H)
    risk = {c.order_id: c for c in sla.at_risk(db, now=FRI + 1.1 * H, limit=1000)}
    assert risk[late].breach_probability == 1.0 and risk[early].breach_probability < 0.5
    order = [c.order_id for c in sla.at_risk(db, now=FRI + 1.1 * H, limit=1000)]
    assert order.index(late) < order.index(early)
    # no repairs yet: the MTTR model answers from the manual (median = nominal 6 h), with an interval
    assert risk[early].repair_median_h == pytest.approx(6.0, rel=0.05) and risk[early].repair_source == "model"
    assert risk[early].repair_lo_h < 6.0 < risk[early].repair_hi_h


def test_sweep_emits_warning_and_breach_once(db, assets):
    oid = _open(db, assets["gold"], "gold", at=FRI)
    sla.sweep(db, FRI + 6.5 * H)                  # response warning (2 h before the 8 h deadline)
    sla.sweep(db, FRI + 9 * H)                    # response breached
    sla.sweep(db, FRI + 9.5 * H)                  # nothing new
    evs = db.execute("SELECT type, payload->>'clock' FROM order_events WHERE order_id = %s "
                       "AND type LIKE 'order.sla_%%' ORDER BY id", (oid,)).fetchall()
    assert evs == [("order.sla_warning", "response"), ("order.sla_breached", "response")]


def test_breach_probability_allows_the_planned_travel(db, assets, uid):
    """A visit due now cannot start before the technician has driven there: the arrival is
    the planned travel after now (0.5 h when the order was never planned)."""
    from datetime import time

    from scheduling import technicians

    oid = _open(db, assets["gold"], "gold")
    state.transition(db, oid, "scheduled", actor=P, changes={"scheduled_for": FRI + H}, at=FRI + 0.1 * H)
    now = FRI + H
    before = _clock(db, oid, now)
    assert before.arrival == now + sla.TRAVEL_H * H
    tid = f"T-{uid}"
    technicians.add(db, tid, "Tech", f"r-{uid}", (51.0, 10.0), shift_start=time(8), shift_end=time(16))
    plan = db.execute("INSERT INTO plans (planned_at, horizon_start, horizon_end, actor, solver_seconds, km) "
                      "VALUES (%s, %s, %s, 'test', 1, 95) RETURNING plan_id", (FRI, FRI, FRI + 48 * H)).fetchone()[0]
    db.execute("INSERT INTO plan_visits (plan_id, order_id, technician_id, seq, arrive_at, starts_at, ends_at, "
               "travel_km, travel_min, pinned, on_time) VALUES (%s, %s, %s, 1, %s, %s, %s, 95, 114, false, true)",
               (plan, oid, tid, FRI + H, FRI + H, FRI + 7 * H))
    assert sla.planned_travel_h(db, [oid]) == {oid: pytest.approx(1.9)}
    c = _clock(db, oid, now)
    assert c.arrival == now + timedelta(minutes=114)
    assert c.breach_probability > before.breach_probability         # later on site, likelier late


def test_calendar_time_zone_and_holidays(db):
    """A business calendar in Berlin time with a public holiday: the response clock skips the
    holiday and counts local working hours; bad changes are refused and change nothing."""
    from datetime import date

    name = "business"
    before = sla.calendars(db)[name]
    try:
        cal = sla.update_calendar(db, name, tz="Europe/Berlin",
                                  holidays=[(date(2026, 3, 9), "a Monday off")])
        assert cal.tz == "Europe/Berlin" and cal.holidays == {date(2026, 3, 9)}
        # Friday 16:00 UTC = 17:00 in Berlin: 1 h left that day, Monday off, 3 h on Tuesday
        assert cal.add(FRI, 4.0) == datetime(2026, 3, 10, 10, 0, tzinfo=timezone.utc)
        assert cal.between(FRI, datetime(2026, 3, 10, 10, 0, tzinfo=timezone.utc)) == pytest.approx(4.0)
        with pytest.raises(ValueError, match="time zone"):
            sla.update_calendar(db, name, tz="Europe")
        with pytest.raises(ValueError, match="working day"):
            sla.update_calendar(db, name, start_h=19.0)
        assert sla.calendars(db)[name] == cal
        assert sla.update_calendar(db, "no-such-calendar", tz="UTC") is None
    finally:
        sla.update_calendar(db, name, tz=before.tz, weekdays=list(before.weekdays), start_h=before.start_h,
                            end_h=before.end_h, holidays=[])
