"""The scheduler against the real database: hard constraints (skills, territory, shifts, windows),
pins kept on re-planning with few changes, unfit orders with their reason, orders waiting for
parts on hold and not scheduled (then resumed when the restock arrives), the API; and the solver
wrapper on a tiny VRPTW whose optimum is found by enumeration."""

from __future__ import annotations

import itertools
from datetime import datetime, time, timedelta, timezone

import numpy as np
import psycopg
import pytest

from orders.state import transition
from scheduling import parts, plans, service, technicians
from scheduling.planner import MAX_VISIT_H, OVERTIME_H, Order, Pin, Technician, plan
from scheduling.solver import Job, Problem, Vehicle, solve
from service_api.auth import create_token
from tests import seed

MONDAY = datetime(2026, 3, 2, 6, 0, tzinfo=timezone.utc)


def test_solver_finds_the_optimum_of_a_tiny_vrptw():
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 100, (7, 2))
    d = np.rint(np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))).astype(int)
    tw = [(0, 10_000)] + [(int(a), int(a) + 120) for a in rng.uniform(0, 300, 6)]
    service_t = 10

    def route_cost(route):
        t, cost, prev = 0, 0, 0
        for c in route:
            t = max(t + d[prev, c], tw[c][0])
            if t > tw[c][1]:
                return None
            t += service_t
            cost += d[prev, c]
            prev = c
        return cost + d[prev, 0]

    best = None
    for perm in itertools.permutations(range(1, 7)):
        for cut in range(0, 7):          # two vehicles: perm[:cut], perm[cut:]
            parts_ = [route_cost(perm[:cut]), route_cost(perm[cut:])]
            if None not in parts_ and (best is None or sum(parts_) < best):
                best = sum(parts_)
    assert best is not None
    p = Problem(distance=d, duration=d, vehicles=[Vehicle(0, 0), Vehicle(0, 0)],
                jobs=[Job(point=i, service=service_t, tw_early=tw[i][0], tw_late=tw[i][1]) for i in range(1, 7)])
    r = solve(p, time_limit=1.0)
    assert r.distance == best and r.unassigned == []
    for route in r.routes:
        for v in route.visits:
            assert tw[v.job + 1][0] <= v.start <= tw[v.job + 1][1]


def test_an_iteration_limit_makes_the_solver_repeatable():
    """Stopped by iterations instead of the wall clock, two solves of one problem give the same
    routes (what makes the closed loop's figures repeatable under any machine load)."""
    rng = np.random.default_rng(5)
    xy = rng.uniform(0, 1000, (41, 2))
    d = np.rint(np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))).astype(int)
    jobs = [Job(point=i, service=30, tw_early=int(a), tw_late=int(a) + 600, required=False, prize=800)
            for i, a in zip(range(1, 41), rng.uniform(0, 3000, 40))]
    p = Problem(distance=d, duration=d, vehicles=[Vehicle(0, 0, tw_late=4000)] * 3, jobs=jobs)
    runs = [solve(p, max_iterations=300) for _ in range(2)]
    assert [[v.job for v in r.visits] for r in runs[0].routes] == [[v.job for v in r.visits] for r in runs[1].routes]
    assert runs[0].distance == runs[1].distance and runs[0].iterations <= 300
    with pytest.raises(ValueError, match="time_limit"):
        solve(p)


def test_a_visit_due_later_in_the_week_goes_with_the_work_at_its_site():
    """A preventive visit due on Friday is not sent on a trip of its own on Monday (about 130 km,
    home and back) when the technician is at the same site on Tuesday anyway: it follows the
    pinned repair there, at no extra driving."""
    mon = MONDAY.replace(hour=0)
    shifts = tuple((mon + timedelta(days=d, hours=8), mon + timedelta(days=d, hours=17)) for d in (0, 1))
    tech = Technician("t1", 50.0, 10.0, "north", {("m", "bearing"): 2, ("m", "preventive"): 2}, shifts)
    site = (50.45, 10.0)                        # ~65 km by road from the technician's home
    repair = Order(1, "m", "bearing", *site, "north", 3, 4.0, respond_by=mon + timedelta(days=1, hours=14))
    service = Order(2, "m", "preventive", *site, "north", 5, 3.0, respond_by=mon + timedelta(days=4, hours=17))
    p = plan([repair, service], [tech], mon + timedelta(hours=7), mon + timedelta(days=2),
             pins=[Pin(1, "t1", mon + timedelta(days=1, hours=9, minutes=30))], time_limit=1.0)
    assert p.unscheduled == {}
    first, then = sorted(p.visits, key=lambda v: v.starts_at)
    assert (first.order_id, then.order_id) == (1, 2)
    assert then.starts_at.date() == first.starts_at.date() and then.travel_km == 0.0
    assert p.km == pytest.approx(2 * first.travel_km)


@pytest.fixture
def area(db, uid):
    """A territory of its own: a model with three modes, six sites around (51, 10), technicians
    A (bearing_wear 3, seal_leak 1), B (bearing_wear 1, seal_leak 2), C (seal_leak 2, absent on
    Monday); nobody knows 'electrical'."""
    region = f"r-{uid}"
    m, c = f"M-{uid}", f"C-{uid}"
    seed.add_model(db, m)
    sites = [f"{c}-S{k}" for k in range(6)]
    seed.add_customer(db, c, sites)
    rng = np.random.default_rng(7)
    for s in sites:
        db.execute("UPDATE sites SET region = %s, lat = %s, lon = %s WHERE site_id = %s",
                   (region, 51 + rng.normal(0, 0.15), 10 + rng.normal(0, 0.2), s))
    assets = []
    for k in range(12):
        a = f"A{k}-{uid}"
        seed.add_asset(db, a, m, c, sites[k % 6], tier="gold")
        assets.append(a)
    techs = {"A": {("bearing_wear", 3), ("seal_leak", 1)}, "B": {("bearing_wear", 1), ("seal_leak", 2)},
             "C": {("seal_leak", 2)}}
    ids = {}
    for k, (name, skills) in enumerate(techs.items()):
        tid = f"{name}-{uid}"
        ids[name] = tid
        technicians.add(db, tid, f"Tech {name}", region, (51 + 0.05 * k, 10.0), shift_start=time(8),
                        shift_end=time(16))
        for mode, level in skills:
            technicians.set_skill(db, tid, m, mode, level)
    technicians.add_absence(db, ids["C"], MONDAY, MONDAY + timedelta(days=1), "training")
    parts.set_requirement(db, m, "bearing_wear", 2)
    return {"region": region, "model": m, "assets": assets, "techs": ids, "sites": sites}


def _order(db, area, k, mode, **kw):
    kw.setdefault("opened_at", MONDAY - timedelta(hours=2))
    kw.setdefault("respond_by", MONDAY + timedelta(hours=30))
    return seed.add_order(db, area["assets"][k], mode, kind="corrective", predicted_mttr_h=kw.pop("mttr", 2.0), **kw)


def _run(db, area, **kw):
    return service.run(db, now=MONDAY, regions=[area["region"]], time_limit=kw.pop("time_limit", 2.0), **kw)


def test_plan_keeps_skills_territory_shifts_and_windows(db, area):
    oids = [_order(db, area, k, "bearing_wear" if k % 2 else "seal_leak", priority=2 + k % 3)
            for k in range(8)]
    unfit = _order(db, area, 9, "electrical")
    tight = _order(db, area, 10, "seal_leak", priority=1, respond_by=MONDAY + timedelta(hours=4))
    plan_id, plan = _run(db, area)
    skills = {(t, mo): lv for t, mo, lv in db.execute(
        "SELECT technician_id, mode, level FROM technician_skills WHERE model_id = %s", (area["model"],))}
    required = {"bearing_wear": 2, "seal_leak": 1}
    assert plan.visits, plan.unscheduled
    for v in plan.visits:
        mode = db.execute("SELECT mode FROM service_orders WHERE order_id = %s", (v.order_id,)).fetchone()[0]
        assert skills.get((v.technician_id, mode), 0) >= required[mode]
        day = v.starts_at.replace(hour=0, minute=0, second=0, microsecond=0)
        assert v.technician_id != area["techs"]["C"] or v.starts_at >= MONDAY + timedelta(days=1) - timedelta(hours=6)
        assert day + timedelta(hours=8) <= v.arrive_at - timedelta(minutes=v.travel_min) + timedelta(seconds=1)
        assert v.ends_at <= day + timedelta(hours=16 + OVERTIME_H)
    by_oid = {v.order_id: v for v in plan.visits}
    assert by_oid[tight].starts_at <= MONDAY + timedelta(hours=4)       # on time, first thing
    assert "no technician qualified" in plan.unscheduled[unfit]
    # the orders in the plan are scheduled, through orders.state, with the technician
    for oid, v in by_oid.items():
        st, assignee = db.execute("SELECT status, detail->>'assignee' FROM service_orders WHERE order_id = %s",
                                  (oid,)).fetchone()
        assert (st, assignee) == ("scheduled", v.technician_id)
    reasons = dict(db.execute("SELECT order_id, reason FROM plan_unscheduled WHERE plan_id = %s", (plan_id,)))
    assert set(reasons) == set(plan.unscheduled) and all(reasons.values())
    assert set(by_oid) | set(reasons) == set(oids) | {unfit, tight}


def test_pins_are_kept_and_replanning_changes_little(db, area):
    oids = [_order(db, area, k, "seal_leak", priority=3) for k in range(6)]
    b = area["techs"]["B"]
    at = MONDAY + timedelta(days=1, hours=5)           # Tuesday 11:00
    plans.pin(db, oids[0], b, at, "test")
    _, first = _run(db, area)
    pinned = [v for v in first.visits if v.order_id == oids[0]]
    assert len(pinned) == 1 and pinned[0].technician_id == b and pinned[0].starts_at == at and pinned[0].pinned
    _, second = _run(db, area)
    again = {v.order_id: v for v in second.visits}
    assert again[oids[0]].technician_id == b and again[oids[0]].starts_at == at
    before = {v.order_id: v.technician_id for v in first.visits}
    moved = [o for o, v in again.items() if before.get(o) not in (None, v.technician_id)]
    assert len(moved) <= 1, moved
    assert second.changed == moved
    assert plans.unpin(db, oids[0]) and not plans.unpin(db, oids[0])


def test_pin_outside_the_shift_is_reported_not_planned(db, area):
    oid = _order(db, area, 0, "seal_leak")
    plans.pin(db, oid, area["techs"]["A"], MONDAY + timedelta(hours=14), "test")   # 20:00
    _, plan = _run(db, area)
    assert oid not in {v.order_id for v in plan.visits}
    assert "outside" in plan.unscheduled[oid]


def test_orders_waiting_for_parts_are_held_then_resumed(db, area, uid):
    depot = f"D-{uid}"
    parts.add_depot(db, depot, "Depot", area["region"], 51.0, 10.0)
    parts.add_part(db, f"kit-{uid}", "seal kit", restock_lead_h=20)
    parts.set_mode_part(db, area["model"], "seal_leak", f"kit-{uid}")
    parts.set_stock(db, depot, f"kit-{uid}", 1)
    first = _order(db, area, 0, "seal_leak", priority=1)
    second = _order(db, area, 1, "seal_leak", priority=3)
    no_part = _order(db, area, 2, "bearing_wear", priority=3)
    _, plan = _run(db, area)
    planned = {v.order_id for v in plan.visits}
    assert first in planned and no_part in planned and second not in planned
    assert plan.unscheduled[second] == "waiting for parts"
    st, reason = db.execute("SELECT status, reason FROM service_orders WHERE order_id = %s", (second,)).fetchone()
    assert (st, reason) == ("on_hold", "waiting_parts")
    assert parts.stock(db, depot, f"kit-{uid}") == 0
    # the restock arrives after 20 h: the next plan resumes the order and schedules it
    later = MONDAY + timedelta(days=1)
    _, plan2 = service.run(db, now=later, regions=[area["region"]], time_limit=2.0)
    assert second in {v.order_id for v in plan2.visits}
    assert db.execute("SELECT status FROM service_orders WHERE order_id = %s", (second,)).fetchone()[0] == "scheduled"
    states = dict(db.execute("SELECT order_id, state FROM part_allocations WHERE part_id = %s", (f"kit-{uid}",)))
    assert states == {first: "reserved", second: "reserved"}
    # the first is repaired, the second cancelled: the next plan consumes one kit and returns one
    for oid, to in ((first, "in_progress"), (first, "completed"), (second, "cancelled")):
        transition(db, oid, to, actor="test", reason="not_needed" if to == "cancelled" else None,
                   at=later + timedelta(hours=2),
                   changes={"first_time_fix": True} if to == "completed" else None)
    service.run(db, now=later + timedelta(hours=3), regions=[area["region"]], time_limit=1.0)
    states = dict(db.execute("SELECT order_id, state FROM part_allocations WHERE part_id = %s", (f"kit-{uid}",)))
    assert states == {first: "consumed", second: "released"}
    assert parts.stock(db, depot, f"kit-{uid}") == 1


@pytest.fixture(scope="module")
def tokens(settings):
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        return {r: {"Authorization": f"Bearer {create_token(conn, f'sched-{r}', r)}"} for r in ("viewer", "planner")}


def test_schedule_api(client, tokens, db, area):
    oid = _order(db, area, 3, "seal_leak", respond_by=datetime.now(timezone.utc) + timedelta(days=3),
                 opened_at=datetime.now(timezone.utc) - timedelta(hours=1))
    body = {"regions": [area["region"]], "time_limit_s": 1}
    assert client.post("/api/v1/schedule/plan", json=body, headers=tokens["viewer"]).status_code == 403
    r = client.put(f"/api/v1/schedule/pins/{oid}", json={"technician_id": area["techs"]["B"]},
                   headers=tokens["planner"])
    assert r.status_code == 200
    r = client.post("/api/v1/schedule/plan", json=body, headers=tokens["planner"])
    assert r.status_code == 201, r.text
    plan = r.json()
    assert plan["regions"] == [area["region"]]
    assert {t["technician_id"] for t in plan["technicians"]} == set(area["techs"].values())
    visit = [v for v in plan["visits"] if v["order_id"] == oid]
    assert visit and visit[0]["technician_id"] == area["techs"]["B"] and visit[0]["pinned"]
    assert client.get("/api/v1/schedule", headers=tokens["viewer"]).json()["plan_id"] >= plan["plan_id"]
    assert client.get(f"/api/v1/schedule/{plan['plan_id']}", headers=tokens["viewer"]).status_code == 200
    assert client.delete(f"/api/v1/schedule/pins/{oid}", headers=tokens["planner"]).status_code == 204
    assert client.delete(f"/api/v1/schedule/pins/{oid}", headers=tokens["planner"]).status_code == 404
    r = client.put("/api/v1/schedule/pins/999999999", json={"technician_id": "nobody"}, headers=tokens["planner"])
    assert r.status_code == 404
    r = client.post("/api/v1/schedule/plan", json={"days": 0}, headers=tokens["planner"])
    assert r.status_code == 422


def test_vrptw_reader_refuses_a_file_that_is_not_an_instance(tmp_path):
    from scheduling.vrptw import read
    bad = tmp_path / "X1.txt"
    bad.write_text("X1\n\nVEHICLE\nNUMBER CAPACITY\n 2 10\n")
    with pytest.raises(ValueError, match="not a Solomon-format VRPTW instance"):
        read(bad, "solomon")


def test_the_simulated_fleet_registers_its_field_service(settings, db, uid):
    from simulator.fleet import Fleet, FleetSpec
    from simulator.register import register_fleet

    fleet = Fleet(FleetSpec(n_assets=20, seed=2, id_prefix=f"fs{uid}"))
    register_fleet(settings, fleet, provision_devices=False)
    sites = db.execute("SELECT count(*), count(lat) FROM sites WHERE site_id LIKE %s", (f"fs{uid}-%",)).fetchone()
    assert sites[0] > 0 and sites[0] == sites[1]
    techs = technicians.load(db, MONDAY, MONDAY + timedelta(days=1))
    mine = [t for t in techs if t.technician_id.startswith(f"fs{uid}-t-")]
    assert len(mine) == sum(len(ts) for ts in fleet.technicians.values())
    assert all(t.skills and len(t.shifts) == 1 for t in mine)
    depots = db.execute("SELECT count(*) FROM depots WHERE depot_id LIKE %s", (f"fs{uid}-%",)).fetchone()[0]
    assert depots == len(fleet.technicians)
    assert parts.stock(db, f"fs{uid}-depot-north", f"fs{uid}-seal_leak-kit") == 2


def test_a_customer_token_does_not_see_the_schedule(client, db, area):
    customer = db.execute("SELECT customer_id FROM sites WHERE site_id = %s", (area["sites"][0],)).fetchone()[0]
    token = create_token(db, "sched-customer", "customer", customer_id=customer)
    assert client.get("/api/v1/schedule", headers={"Authorization": f"Bearer {token}"}).status_code == 403
