"""The order rule on p_fail histories: plain first crossing, waiting for a rise, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from detection.prediction.order_rule import OrderRule


def test_plain_rule_is_the_first_crossing():
    p = np.array([0.1, 0.6, 0.2, 0.9])
    assert OrderRule(0.5).first_order(p) == 1
    assert OrderRule(0.95).first_order(p) is None
    assert OrderRule(0.5).risen(p).all()


def test_a_slow_climb_waits_for_the_jump():
    # risk creeps above the threshold early, then jumps in the last days (a failing drive)
    p = np.r_[np.linspace(0.002, 0.004, 20), 0.02, 0.05]
    assert OrderRule(0.003).first_order(p) < 15
    assert OrderRule(0.003, rise_rows=3, rise_factor=2.0).first_order(p) == 20


def test_a_constant_elevated_risk_never_orders():
    p = np.full(30, 0.2)
    assert OrderRule(0.1).first_order(p) == 0
    assert OrderRule(0.1, rise_rows=2, rise_factor=1.5).first_order(p) is None


def test_the_rise_is_measured_over_the_lowest_of_the_last_k_rows_and_needs_one():
    p = np.array([0.4, 0.1, 0.3, 0.3, 0.3])
    r = OrderRule(0.25, rise_rows=2, rise_factor=2.0)
    # row 0 has no earlier row; rows 2 and 3 are >= 2x the 0.1 of row 1; row 4 looks at 0.3, 0.3
    assert r.risen(p).tolist() == [False, False, True, True, False]
    assert r.first_order(p) == 2
    assert r.order_score(p).tolist() == [0.0, 0.0, 0.3, 0.3, 0.0]


def test_the_order_score_sweeps_like_the_rule():
    rng = np.random.default_rng(0)
    p = rng.random(50) ** 3
    r = OrderRule(0.05, rise_rows=3, rise_factor=1.5)
    s = r.order_score(p)
    for thr in (0.01, 0.1, 0.3):
        hit = np.flatnonzero(s >= thr)
        assert OrderRule(thr, 3, 1.5).first_order(p) == (int(hit[0]) if hit.size else None)


@pytest.mark.parametrize("kwargs", [{"threshold": 0.0}, {"threshold": 1.5}, {"rise_rows": -1},
                                    {"rise_rows": 1.5}, {"rise_factor": 0.5}, {"urgency": -1.0},
                                    {"urgency": float("nan")}, {"urgency_h": 0.0},
                                    {"urgency_from_h": -1.0}])
def test_bad_rules_are_clear_errors(kwargs):
    with pytest.raises(ValueError):
        OrderRule(**{"threshold": 0.5, **kwargs})


def test_urgency_weighs_the_risk_by_the_remaining_life():
    p = np.array([0.4, 0.4, 0.4, 0.4])
    rul_h = np.array([720.0, 168.0, 24.0, -3.0])      # a slightly negative estimate counts as now
    r = OrderRule(0.1, urgency=1.0)
    assert np.allclose(r.risk(p, rul_h), 0.4 * 24.0 / (np.maximum(rul_h, 0) + 24.0))
    assert r.risk(p, rul_h)[-1] == 0.4 and r.first_order(p, rul_h) == 2
    assert np.array_equal(OrderRule(0.1).risk(p), p)             # urgency 0: p_fail alone, no rul needed
    assert (OrderRule(0.1, urgency=2.0).risk(p, rul_h) <= r.risk(p, rul_h)).all()
    # the rise is judged on the weighted risk: a steady p_fail whose failure comes closer rises
    steady = OrderRule(0.1, rise_rows=2, rise_factor=3.0)
    assert steady.first_order(p) is None
    assert OrderRule(0.1, rise_rows=2, rise_factor=3.0, urgency=1.0).first_order(p, rul_h) == 2


def test_urgency_from_a_remaining_life_keeps_the_threshold_within_it():
    p = np.array([0.6, 0.6, 0.6, 0.6])
    rul_h = np.array([720.0, 336.0, 168.0, 24.0])
    now = OrderRule(0.5, urgency=1.0)
    within = OrderRule(0.5, urgency=1.0, urgency_from_h=168.0)
    assert now.first_order(p, rul_h) is None                      # 0.6 * 24 / 48 at a day ahead
    assert within.first_order(p, rul_h) == 2                      # no discount within a week
    assert np.allclose(within.risk(p, rul_h)[:2], 0.6 * 192.0 / (rul_h[:2] + 24.0))
    # beyond it the weight is the same up to a constant: the ranking there is unchanged
    assert np.allclose(within.risk(p, rul_h)[:2] / now.risk(p, rul_h)[:2], 192.0 / 24.0)


def test_urgency_needs_the_remaining_life_of_every_row():
    with pytest.raises(ValueError, match="rul_h"):
        OrderRule(0.5, urgency=1.0).first_order([0.1, 0.2])
    with pytest.raises(ValueError, match="rows"):
        OrderRule(0.5, urgency=1.0).first_order([0.1, 0.2], [24.0])
    with pytest.raises(ValueError, match="NaN"):
        OrderRule(0.5, urgency=1.0).first_order([0.1, 0.2], [24.0, np.nan])


def test_bad_histories_are_clear_errors():
    with pytest.raises(ValueError, match="NaN"):
        OrderRule(0.5, 2).first_order([0.1, np.nan])
    with pytest.raises(ValueError, match="one-dimensional"):
        OrderRule(0.5).first_order(np.zeros((2, 2)))
