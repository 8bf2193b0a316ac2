"""Scoring of service orders against the ground truth, and the fixed-threshold baseline."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from simulator.fleet import Fleet, FleetSpec
from simulator.ground_truth import GroundTruth
from simulator.scoring import (alarm_modes, fixed_threshold_baseline, fixed_threshold_baselines,
                               score_orders)

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def H(h):
    return T0 + timedelta(hours=h)


def _gt():
    gt = GroundTruth()
    gt.add(T0, "", "", "inventory", asset_ids=[f"a{i}" for i in range(10)])
    # a1: bearing onset, failure at 200 h, repaired at 210 h
    gt.add(H(10), "a1", "d1", "onset", "bearing_wear")
    gt.add(H(200), "a1", "d1", "failure", "bearing_wear")
    gt.add(H(210), "a1", "d1", "repair_end", "bearing_wear", kind="corrective")
    # a2: fouling onset, averted by predictive maintenance at 300 h
    gt.add(H(100), "a2", "d2", "onset", "fouling")
    gt.add(H(300), "a2", "d2", "maintenance", "fouling", kind="predictive", restored=True)
    # a3: seal leak failure without any order
    gt.add(H(50), "a3", "d3", "onset", "seal_leak")
    gt.add(H(400), "a3", "d3", "failure", "seal_leak")
    # a4: sudden
    gt.add(H(500), "a4", "d4", "failure", "sudden")
    gt.add(H(720), "", "", "sensor_fault", None, sensor="x", kind="stuck")
    return gt


def test_recall_precision_lead_and_false_orders():
    orders = [("a1", "bearing_wear", H(150)),    # caught 50 h ahead
              ("a1", "bearing_wear", H(199)),    # a second, late order: true but not first
              ("a2", "fouling", H(250)),         # averted by maintenance after this order
              ("a3", "seal_leak", H(390)),       # only 10 h ahead: detected, not caught
              ("a5", "fouling", H(300))]         # nothing there: false
    s = score_orders(orders, _gt(), start=T0, end=H(720))
    assert s["failures"] == 2
    assert s["caught"] == 2                       # a1 + averted a2
    assert s["recall_24h"] == pytest.approx(2 / 3)
    assert s["precision"] == pytest.approx(4 / 5)
    assert s["median_lead_time_h"] == pytest.approx((50 + 10) / 2)
    months = 720 / 24 / 30.44
    assert s["false_orders_per_100_asset_months"] == pytest.approx(100 / (10 * months))
    assert s["per_mode"]["seal_leak"] == {"failures": 1, "detected": 1, "orders": 1,
                                          "true_orders": 1}
    assert s["sudden"] == {"failures": 1}


def test_order_before_previous_repair_does_not_count_for_the_next_failure():
    gt = _gt()
    gt.add(H(260), "a1", "d1", "onset", "bearing_wear")
    gt.add(H(330), "a1", "d1", "failure", "bearing_wear")
    s = score_orders([("a1", "bearing_wear", H(150))], gt, start=T0, end=H(720))
    assert s["per_mode"]["bearing_wear"]["failures"] == 2
    assert s["per_mode"]["bearing_wear"]["caught_24h"] == 1


def test_orders_accept_dicts_and_strings_and_reject_bad_parameters():
    s = score_orders([{"asset_id": "a1", "mode": "bearing_wear",
                       "opened_at": "2026-01-07T06:00:00.000Z"}], _gt(), start=T0, end=H(720))
    assert s["caught"] == 1
    with pytest.raises(ValueError):
        score_orders([], _gt(), horizon_h=10, lead_h=24)


def test_alarm_modes_cover_every_predictable_mode():
    from simulator.catalog import CATALOG

    for pm in CATALOG.values():
        modes = set(alarm_modes(pm).values())
        assert {fm.mode for fm in pm.failure_modes if fm.predictable} <= modes


def test_fixed_threshold_baseline_catches_some_failures_late():
    fleet = Fleet(FleetSpec(n_assets=120, seed=21, start=T0, hazard_scale=4))
    blocks = (fleet.step(None, 96, 900.0) for _ in range(45))
    orders = fixed_threshold_baseline(blocks, {a.device_id: a.asset_id for a in fleet.assets})
    s = score_orders(orders, fleet.ground_truth)
    assert s["failures"] > 20 and orders
    # a nameplate threshold catches some predictable failures a day ahead, far from all
    assert 0.1 < s["recall_24h"] < 0.8
    assert s["precision"] > 0.3


def test_baseline_settings_in_one_pass_match_single_runs_and_trade_recall_for_precision():
    spec = FleetSpec(n_assets=60, seed=22, start=T0, hazard_scale=4)
    fleet = Fleet(spec)
    d2a = {a.device_id: a.asset_id for a in fleet.assets}
    many = fixed_threshold_baselines((fleet.step(None, 96, 900.0) for _ in range(30)), d2a,
                                     scales=(0.6, 1.0, 1.4))
    twin = Fleet(spec)
    assert many[1.0] == fixed_threshold_baseline((twin.step(None, 96, 900.0) for _ in range(30)), d2a)
    tight, nameplate, loose = (score_orders(many[x], fleet.ground_truth) for x in (0.6, 1.0, 1.4))
    assert len(many[0.6]) >= len(many[1.0]) >= len(many[1.4])
    assert tight["recall_24h"] >= nameplate["recall_24h"] >= loose["recall_24h"]
    with pytest.raises(ValueError):
        fixed_threshold_baselines([], d2a, scales=(0.0,))


def test_an_order_still_open_catches_the_failure_however_early_but_not_one_from_before_the_last_fix():
    from datetime import datetime, timedelta, timezone

    from simulator.ground_truth import GroundTruth
    from simulator.scoring import score_orders

    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    gt = GroundTruth()
    gt.add(t0, "", "", "inventory", asset_ids=["a1", "a2"])
    gt.add(t0 + timedelta(days=1), "a1", "d1", "onset", "fouling")
    gt.add(t0 + timedelta(days=40), "a1", "d1", "failure", "fouling")          # 39 days after its order
    gt.add(t0 + timedelta(days=2), "a2", "d2", "failure", "fouling")
    gt.add(t0 + timedelta(days=3), "a2", "d2", "repair_end", "fouling", kind="corrective")
    gt.add(t0 + timedelta(days=20), "a2", "d2", "onset", "fouling")
    gt.add(t0 + timedelta(days=30), "a2", "d2", "failure", "fouling")
    orders = [("a1", "fouling", t0 + timedelta(days=1, hours=12)),
              ("a2", "fouling", t0 + timedelta(days=1))]                        # before the repair
    s = score_orders(orders, gt, start=t0, end=t0 + timedelta(days=60), horizon_h=336)
    # a1 caught 38.5 days ahead; a2's first failure caught 24 h ahead, its second (after the
    # repair closed the order) not caught
    assert s["per_mode"]["fouling"]["failures"] == 3 and s["per_mode"]["fouling"]["caught_24h"] == 2
    assert s["median_lead_time_h"] == (24.0 + 38.5 * 24) / 2
