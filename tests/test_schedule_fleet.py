"""The scheduling closed loop (``benchmarks.schedule_fleet``): with the solver stopped by
iterations, two runs of one order stream give the same figures, and the km breakdown by leg and
by order kind adds up to the km driven; the planner can book the loop's learned repair times."""

from __future__ import annotations

import pytest

from datetime import timedelta

from benchmarks.schedule_fleet import (LEGS, START, Job, Tech, _replan, order_stream, roster, run_seeds, simulate,
                                       staffing)
from scheduling.planner import Order


@pytest.fixture(scope="module")
def small_loop():
    jobs = order_stream(60, 5, 5, 3.0)
    return jobs, roster(staffing(jobs, 5), 5)


def test_the_loop_is_repeatable_with_an_iteration_limit(small_loop):
    jobs, techs = small_loop
    runs = [simulate(jobs, techs, 5, "planner", None, 200) for _ in range(2)]
    for r in runs:
        r.pop("plan_seconds_mean")
    assert runs[0] == runs[1]
    assert runs[0]["plans"] > 0 and runs[0]["completed"] > 0


@pytest.mark.parametrize("policy", ["planner", "greedy"])
def test_the_km_breakdown_adds_up(small_loop, policy):
    jobs, techs = small_loop
    r = simulate(jobs, techs, 5, policy, None, 200)
    assert set(r["km_by_leg"]) == set(LEGS)
    assert sum(r["km_by_leg"].values()) == pytest.approx(r["km"], abs=0.5)
    # every km but the drive home at the shift's end is a drive to or for a visit of some kind
    assert sum(r["km_by_kind"].values()) == pytest.approx(r["km"] - r["km_by_leg"]["site_to_home"], abs=0.5)
    assert sum(r["visits_by_kind"].values()) >= r["completed"]


def test_the_dev_harness_judges_a_change_on_several_seeds():
    """``run_seeds`` (``benchmarks.schedule --seeds``): per seed the planner and greedy figures of
    one run, over the seeds the mean and worst ratio and the smallest SLA response margin; the
    same code run against its own earlier figures changes no seed's km."""
    first = run_seeds([5, 6], days=5, iterations=200, setup="demo")
    rows = first["per_seed"].values()
    assert sorted(first["per_seed"]) == ["5", "6"]
    assert first["mean_ratio"] == pytest.approx(sum(r["ratio"] for r in rows) / 2, abs=1e-4)
    assert first["worst_ratio"] == max(r["ratio"] for r in rows)
    assert first["min_sla_response_margin"] == min(r["sla_response_margin"] for r in rows)
    for r in rows:
        assert r["ratio"] == pytest.approx(r["km"] / r["greedy_km"], abs=1e-3) if r["greedy_km"] else True
        assert sum(r["km_by_leg"].values()) == pytest.approx(r["km"], abs=0.5)
    again = run_seeds([5, 6], days=5, iterations=200, setup="demo", against=first)
    assert again["mean_km_change_vs_against"] == 0.0
    assert all(r["km_change_vs_against"] == 0.0 for r in again["per_seed"].values())


def test_the_planner_books_the_learned_repair_time_when_asked(small_loop):
    """Two 3-hour preventive visits at one site fit one technician's Monday by the manual's time;
    booked at a learned 2.5x (``--learned-service``) only one does. The loop reports preventive
    visits not begun by their due date for both policies."""
    site, home = (51.0, 10.0), (51.1, 10.0)
    tech = Tech("t", "north", home, {("m", "preventive"): 1}, 2)
    jobs = [Job(Order(k, "m", "preventive", *site, "north", 5, 3.0, respond_by=START + timedelta(days=2)),
                f"a{k}", START, None, 3.0, 0.0, False) for k in (1, 2)]
    now = START + timedelta(hours=7)
    _replan([tech], jobs, now, None, 200)
    assert sorted(tech.queue) == [1, 2]
    _replan([tech], jobs, now, None, 200, service={"preventive": 2.5})
    assert len(tech.queue) == 1
    jobs_, techs = small_loop
    n_pm = sum(1 for j in jobs_ if j.mode == "preventive")
    for policy in ("planner", "greedy"):
        assert 0 <= simulate(jobs_, techs, 5, policy, None, 200, learned_service=True)["preventive_late"] <= n_pm
