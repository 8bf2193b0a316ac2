"""orders.state against the real database: every (from, to) pair of statuses is possible exactly
when the state machine says so, each change writes one history row (from, to, actor, reason,
time), holds resume to where they came from, system clocks are clamped and people's are not,
detection's proposals open or escalate, repairs walk the order to completed."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from orders import state
from tests import seed

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
PERSON = "planner:test"


@pytest.fixture
def fleet(db, uid):
    m, assets = f"M-{uid}", [f"A{i}-{uid}" for i in range(3)]
    seed.add_small_fleet(db, m, f"C-{uid}", assets, site_id=f"C-{uid}-S0", tier="bronze")
    return {"model": m, "assets": assets}


PATH_TO = {   # how a person walks an approved order to each status
    "approved": [],
    "scheduled": [("scheduled", {"scheduled_for": T0 + timedelta(days=1)}, None)],
    "in_progress": [("scheduled", {"scheduled_for": T0 + timedelta(days=1)}, None), ("in_progress", {}, None)],
    "on_hold": [("on_hold", {}, "waiting_parts")],
    "completed": [("scheduled", {"scheduled_for": T0}, None), ("in_progress", {}, None),
                  ("completed", {"first_time_fix": True}, None)],
    "cancelled": [("cancelled", {}, "not_needed")],
}


def make(db, asset, status, mode="bearing_wear"):
    """An order of ``asset`` in ``status``, walked there through the state machine."""
    start = "proposed" if status in ("proposed", "rejected") else "approved"
    oid = state.create(db, asset_id=asset, mode=mode, kind="predictive", status=start, priority=3,
                       opened_at=T0, actor="detection", risk=0.95)
    steps = [("rejected", {}, "false_alarm")] if status == "rejected" else PATH_TO.get(status, [])
    for i, (to, changes, reason) in enumerate(steps):
        state.transition(db, oid, to, actor=PERSON, reason=reason, changes=dict(changes),
                         at=T0 + timedelta(minutes=i + 1))
    return oid


EXTRA = {   # what a person must give for a move to the status to be complete
    "scheduled": ({"scheduled_for": T0 + timedelta(days=2)}, None),
    "completed": ({"first_time_fix": False}, None),
    "on_hold": ({}, "waiting_customer"),
    "rejected": ({}, "false_alarm"),
    "cancelled": ({}, "duplicate"),
}


def test_the_python_mirror_agrees_with_the_database(db):
    rows = db.execute("SELECT status, live FROM order_statuses ORDER BY position").fetchall()
    assert tuple(s for s, _ in rows) == state.STATUSES
    assert tuple(s for s, live in rows if live) == state.LIVE == state.live_statuses(db)
    index = db.execute("SELECT pg_get_indexdef('service_orders_live_idx'::regclass)").fetchone()[0]
    assert all(f"'{s}'" in index for s in state.LIVE) and not any(f"'{s}'" in index for s in state.TERMINAL)
    reasons = {r for (r,) in db.execute("SELECT reason FROM order_reasons")}
    assert set(state.DECISION_REASONS + state.HOLD_REASONS) <= reasons


@pytest.mark.parametrize("current,new", list(itertools.product(state.STATUSES, repeat=2)))
def test_every_pair_of_statuses(db, fleet, current, new):
    oid = make(db, fleet["assets"][0], current)
    changes, reason = EXTRA.get(new, ({}, None))
    possible = state.can_move(current, new)
    if current == "on_hold" and new in state.HOLD_FROM:
        possible = new == "approved"                    # it was held from approved
    if current == new:
        possible = current in state.LIVE               # a planning change, no status change
        changes, reason = {"priority": 1}, None
    n = db.execute("SELECT count(*) FROM service_order_history WHERE order_id = %s", (oid,)).fetchone()[0]
    at = T0 + timedelta(hours=1)
    if possible:
        row = state.transition(db, oid, new, actor=PERSON, reason=reason, changes=dict(changes), at=at)
        assert row["status"] == new
        last = db.execute("SELECT from_status, to_status, actor, at FROM service_order_history "
                            "WHERE order_id = %s ORDER BY id DESC LIMIT 1", (oid,)).fetchone()
        assert last == (current, new, PERSON, at)
        assert (row["closed_at"] == at) == (new in state.TERMINAL and current != new)
    else:
        with pytest.raises(state.Conflict):
            state.transition(db, oid, new, actor=PERSON, reason=reason, changes=dict(changes), at=at)
        assert db.execute("SELECT status FROM service_orders WHERE order_id = %s", (oid,)).fetchone()[0] == current
    m = db.execute("SELECT count(*) FROM service_order_history WHERE order_id = %s", (oid,)).fetchone()[0]
    assert m == n + possible


def test_required_values_and_time_order(db, fleet):
    a = fleet["assets"][1]
    oid = make(db, a, "approved")
    with pytest.raises(state.Invalid, match="scheduled_for"):
        state.transition(db, oid, "scheduled", actor=PERSON, at=T0 + timedelta(hours=1))
    with pytest.raises(state.Invalid, match="needs a reason"):
        state.transition(db, oid, "cancelled", actor=PERSON, at=T0 + timedelta(hours=1))
    with pytest.raises(state.Invalid, match="on_hold needs a reason"):
        state.transition(db, oid, "on_hold", actor=PERSON, reason="false_alarm", at=T0 + timedelta(hours=1))
    with pytest.raises(state.Invalid, match="first_time_fix is only"):
        state.transition(db, oid, None, actor=PERSON, changes={"first_time_fix": True}, at=T0 + timedelta(hours=1))
    with pytest.raises(state.Invalid, match="cannot change"):
        state.transition(db, oid, None, actor=PERSON, changes={"status": "completed"}, at=T0 + timedelta(hours=1))
    # a person cannot date a change before the last one; the system's clock is clamped to it
    state.transition(db, oid, None, actor=PERSON, changes={"priority": 2}, at=T0 + timedelta(hours=2))
    with pytest.raises(state.Invalid, match="before the order's last change"):
        state.transition(db, oid, None, actor=PERSON, changes={"priority": 1}, at=T0 + timedelta(hours=1))
    row = state.transition(db, oid, None, actor="detection", changes={"priority": 1}, at=T0)
    assert row["priority"] == 1 and row["status_at"] == T0        # the status began when it opened
    hist = db.execute("SELECT at FROM service_order_history WHERE order_id = %s ORDER BY id", (oid,)).fetchall()
    assert [h[0] for h in hist] == sorted(h[0] for h in hist)
    # one live order per asset and mode
    with pytest.raises(state.LiveOrderExists) as e:
        make(db, a, "approved")
    assert e.value.order_id == oid


def test_hold_resumes_to_where_it_came_from(db, fleet):
    oid = make(db, fleet["assets"][2], "scheduled")
    row = state.transition(db, oid, "on_hold", actor="technician:t", reason="waiting_parts", at=T0 + timedelta(hours=1))
    assert row["held_from"] == "scheduled" and row["reason"] == "waiting_parts"
    with pytest.raises(state.Conflict, match="resumes to that"):
        state.transition(db, oid, "approved", actor=PERSON, at=T0 + timedelta(hours=2))
    row = state.transition(db, oid, "scheduled", actor=PERSON, at=T0 + timedelta(hours=2))
    assert row["status"] == "scheduled" and row["held_from"] is None and row["reason"] == "resumed"
    # one event per status change, in the same transaction (planning changes emit none)
    evs = db.execute("SELECT type, payload->>'reason' FROM order_events WHERE order_id = %s ORDER BY id",
                       (oid,)).fetchall()
    assert evs == [("order.approved", "opened"), ("order.scheduled", "planner"),
                   ("order.on_hold", "waiting_parts"), ("order.resumed", "resumed")]


def _proposal(asset, kind="predictive", at=T0, risk=0.95, priority=3, failure_in_h=48.0):
    return state.OrderProposal(asset_id=asset, mode="seal_leak", kind=kind, opened_at=at, priority=priority,
                               sla_tier="bronze", risk=risk, predicted_failure_at=at + timedelta(hours=failure_in_h),
                               predicted_mttr_h=4.0, respond_by=at + timedelta(hours=72))


def test_detection_proposes_escalates_and_a_repair_completes(db, fleet):
    a = fleet["assets"][0]
    [oid] = state.open_or_update(db, [_proposal(a)])
    row = db.execute("SELECT status, reason FROM service_orders WHERE order_id = %s", (oid,)).fetchone()
    assert row == ("proposed", "needs_review")          # bronze: a planner decides
    # the same evidence again changes nothing; more urgent evidence escalates, with a history row
    assert state.open_or_update(db, [_proposal(a, at=T0 + timedelta(hours=1))]) == []
    n = db.execute("SELECT count(*) FROM service_order_history WHERE order_id = %s", (oid,)).fetchone()[0]
    state.open_or_update(db, [_proposal(a, at=T0 + timedelta(hours=2), risk=0.99, priority=1, failure_in_h=10)])
    hist = db.execute("SELECT from_status, to_status, actor, reason FROM service_order_history "
                        "WHERE order_id = %s ORDER BY id", (oid,)).fetchall()
    assert len(hist) == n + 1 and hist[-1] == ("proposed", "proposed", "detection", "escalated")
    assert db.execute("SELECT priority, risk FROM service_orders WHERE order_id = %s", (oid,)).fetchone() == (1, 0.99)
    # a failure report approves the proposal (corrective evidence)
    state.open_or_update(db, [_proposal(a, kind="corrective", at=T0 + timedelta(hours=3), risk=1.0)])
    assert db.execute("SELECT status FROM service_orders WHERE order_id = %s", (oid,)).fetchone()[0] == "approved"
    # a device's repair: on site at its start, completed at its finish
    rid = db.execute("INSERT INTO repairs (asset_id, mode, started_at, finished_at) VALUES (%s, 'seal_leak', %s, %s) "
                       "RETURNING id", (a, T0 + timedelta(hours=5), T0 + timedelta(hours=8))).fetchone()[0]
    assert state.complete_repaired(db, rid, a, "seal_leak", T0 + timedelta(hours=8), actor="device:d1") == [oid]
    tail = db.execute("SELECT from_status, to_status, actor, at FROM service_order_history WHERE order_id = %s "
                        "ORDER BY id DESC LIMIT 2", (oid,)).fetchall()[::-1]
    assert tail == [("approved", "in_progress", "device:d1", T0 + timedelta(hours=5)),
                    ("in_progress", "completed", "device:d1", T0 + timedelta(hours=8))]
    assert db.execute("SELECT order_id, kind FROM repairs WHERE id = %s", (rid,)).fetchone() == (oid, "predictive")
    assert state.complete_repaired(db, rid, a, "seal_leak", T0 + timedelta(hours=8)) == []   # nothing left


def test_corrective_opens_approved_and_technician_completion_records_the_repair(db, fleet):
    a = fleet["assets"][1]
    [oid] = state.open_or_update(db, [_proposal(a, kind="corrective", risk=1.0)])
    assert db.execute("SELECT status FROM service_orders WHERE order_id = %s", (oid,)).fetchone()[0] == "approved"
    state.transition(db, oid, "scheduled", actor=PERSON, changes={"scheduled_for": T0 + timedelta(hours=2)},
                     at=T0 + timedelta(minutes=5))
    state.transition(db, oid, "in_progress", actor="technician:t", at=T0 + timedelta(hours=2))
    with pytest.raises(state.Invalid, match="first_time_fix"):
        state.transition(db, oid, "completed", actor="technician:t", at=T0 + timedelta(hours=4))
    state.complete_by_technician(db, oid, actor="technician:t", at=T0 + timedelta(hours=4), first_time_fix=False)
    rep = db.execute("SELECT started_at, finished_at, first_time_fix, kind FROM repairs WHERE order_id = %s",
                       (oid,)).fetchone()
    assert rep == (T0 + timedelta(hours=2), T0 + timedelta(hours=4), False, "corrective")
