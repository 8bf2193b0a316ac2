"""The Backblaze benchmark's drive pipeline on a small slice shaped like the real daily files
(same columns, gzipped CSV per day, empty attributes, missing days, a drive's last row on its
failure day): drives split by serial, the failure-day row never seen, orders scored by hand,
and an end-to-end --quick run (the full run is `python -m benchmarks.backblaze`)."""

from __future__ import annotations

import csv
import gzip
import json
from datetime import date, timedelta

import numpy as np
import pytest

from benchmarks import backblaze as bb

HEADER = ["date", "serial_number", "model", "capacity_bytes", "failure",
          "smart_1_normalized", "smart_1_raw", "smart_5_normalized", "smart_5_raw", "smart_9_normalized",
          "smart_9_raw", "smart_187_normalized", "smart_187_raw", "smart_194_normalized", "smart_194_raw",
          "smart_197_normalized", "smart_197_raw"]
DAYS = 30
SENTINEL = 77.5  # temperature written only on failure days: must never reach the platform


def write_fleet(path, n_drives=240, n_failed=48, seed=0):
    """Daily files: failing drives grow reallocated/pending sectors in their last 6 days; some
    healthy drives carry a constant non-zero count from the start (the rule's false alarms)."""
    rng = np.random.default_rng(seed)
    fail_day = {i: int(rng.integers(12, DAYS)) for i in range(n_failed)}
    scarred = set(range(n_failed, n_failed + 20))
    first = {i: (int(rng.integers(1, 5)) if i % 9 == 0 else 0) for i in range(n_drives)}
    (path / "data").mkdir(parents=True)
    day0 = date(2013, 4, 10)
    for d in range(DAYS):
        with gzip.open(path / "data" / f"{day0 + timedelta(days=d)}.csv.gz", "wt", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(HEADER)
            for i in range(n_drives):
                if d < first[i] or (i in fail_day and d > fail_day[i]) or (i % 13 == 5 and d == 10):
                    continue  # not yet installed, gone after failing, or a missing day
                ahead = fail_day[i] - d if i in fail_day else 99
                grow = max(0, 7 - ahead) * int(rng.integers(1, 4))
                s5 = grow * 8 + (3 if i in scarred else 0)
                temp = SENTINEL if ahead == 0 else 25 + int(rng.integers(0, 5))
                cap = 3000592982016 if i % 2 else 1500301910016
                w.writerow([str(day0 + timedelta(days=d)), f"S{i:04d}", "M3000" if i % 2 else "M1500", cap,
                            int(ahead == 0), "", int(rng.integers(0, 1000)), "", s5, "", 20000 + 24 * d,
                            "", "", "", temp, "", grow])
    return fail_day, scarred


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    path = tmp_path_factory.mktemp("backblaze")
    fail_day, scarred = write_fleet(path)
    drives, sensors, _ = bb.load_drives(path, progress=False)
    return path, fail_day, scarred, drives, sensors


def test_drives_sensors_and_no_failure_day_row(fleet):
    _, fail_day, _, drives, sensors = fleet
    assert sensors == ["smart_1_raw", "smart_5_raw", "smart_9_raw", "smart_194_raw", "smart_197_raw", "capacity_bytes"]
    assert len(drives) == 240
    by = {d.serial: d for d in drives}
    for i, f in fail_day.items():
        d = by[f"S{i:04d}"]
        assert d.failure_day == f and d.last_day == f - 1   # the failure-day row is dropped
    assert not any((d.values == SENTINEL).any() for d in drives)
    gap = by["S0005"]                                           # 5 % 13 == 5: day 10 missing
    assert np.isnan(gap.values[10]).all() and np.isfinite(gap.values[11, :2]).all()


def test_split_is_by_drive_and_halves_the_failures(fleet):
    drives = fleet[3]
    masks = [bb.split(drives, s) for s in range(3)]
    for test in masks:
        failed = np.array([d.failure_day is not None for d in drives])
        assert test.sum() == 120 and (test & failed).sum() == 24
    assert not np.array_equal(masks[0], masks[1])


def test_day_labels_and_orders_by_hand():
    values = np.zeros((10, 1))
    failed = bb.Drive("F", "M", 5, values, 15, np.zeros((10, 5)))     # rows = days 5..14, fails day 15
    healthy = bb.Drive("H", "M", 0, np.zeros((20, 1)), None, np.zeros((20, 5)))
    known, pos = bb.day_labels(failed)
    assert known.all() and pos.tolist() == [False] * 3 + [True] * 7      # days 8..14 fail within 7 days
    known, pos = bb.day_labels(healthy)
    assert known.tolist() == [True] * 13 + [False] * 7 and not pos.any()
    res = bb.score_orders([failed, healthy], [2, 4])                    # day 7: 8 days ahead; a false order
    assert res["orders"] == 2 and res["recall"] == 1.0 and res["recall_7d"] == 0.0
    assert res["precision"] == 0.5 and res["median_lead_days"] == 8.0
    assert res["false_orders_per_1000_drive_months"] == pytest.approx(1000 / (30 / bb.DAYS_PER_MONTH))
    assert bb.score_orders([failed, healthy], [8, None])["recall_7d"] == 1.0


def test_rule_orders_fire_on_the_first_nonzero_counter():
    rule = np.full((6, 5), np.nan)
    rule[:, 3] = [0, 0, 0, 2, 2, 3]                                     # SMART 197 from day 3
    d = bb.Drive("R", "M", 0, np.zeros((6, 1)), None, rule)
    assert bb.rule_orders([d, bb.Drive("Z", "M", 0, np.zeros((6, 1)), None, np.full((6, 5), np.nan))]) == [3, None]


def test_quick_run_learns_the_precursor(fleet, tmp_path):
    path = fleet[0]
    out = tmp_path / "bb.json"
    assert bb.main(["--quick", "--splits", "2", "--data", str(path), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    for key in ("average_precision_7d", "recall_7d_at_rule_orders", "recall_7d_at_precision_0_5", "recall",
                "recall_7d", "precision", "false_orders_per_1000_drive_months", "median_lead_days"):
        assert key in res and f"{key}_std" in res and key in res["rule"]
    assert res["splits"] == 2 and res["failures"] == 48
    # the rising counters are learned from the train drives and found on the test drives
    assert res["average_precision_7d"] > 0.5 > res["rule"]["average_precision_7d"]
    assert res["recall_7d"] > 0.5 and res["precision"] > 0.7
    assert res["rule"]["precision"] < 0.8                               # its scarred healthy drives
    for s in res["per_split"]:
        assert s["train_failures"] == 24 and s["test_drives"] == 120


def test_inner_validation_reads_only_the_outer_train_drives(fleet, tmp_path):
    path, _, _, drives, _ = fleet
    out = tmp_path / "inner.json"
    assert bb.main(["--inner-of", "1", "--splits", "1", "--rise", "--windows", "2,4,8", "--horizon-days", "3",
                    "--data", str(path), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    outer_train = {d.serial for d, t in zip(drives, bb.split(drives, 1)) if not t}
    assert res["inner_of"] == 1 and res["drives"] == len(outer_train) == 120
    assert res["failures"] == 24 and res["per_split"][0]["seed"] == 101
    assert res["config"]["spec"]["rise"] is True and res["config"]["spec"]["windows"] == [2, 4, 8]
    assert res["config"]["horizon_h"] == 72.0          # the trainer's horizon; scoring stays 7 days
    assert res["average_precision_7d"] > 0.3     # the rising counters are still learned


def test_variant_prior_and_order_rules_in_one_run(fleet, tmp_path):
    path, _, _, drives, _ = fleet
    assert bb.history(drives[0], 0).variant == drives[0].model        # the drive model is the variant
    out = tmp_path / "rules.json"
    assert bb.main(["--inner-of", "0", "--splits", "1", "--variant-prior", "--order-rise", "2", "--rise-factor", "1.5",
                    "--compare-order-rules", "--data", str(path), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["config"]["variant_prior"] is True
    assert res["order_rule"] == {"threshold": 0.5, "rise_rows": 2, "rise_factor": 1.5, "urgency": 0.0, "urgency_h": 24.0,
                                 "urgency_from_h": 0.0}
    assert set(res["order_rules"]) == {f"rise_{k}d_x{f:g}" for k, f in bb.RISE_GRID}
    same = res["order_rules"]["rise_2d_x1.5"]          # the headline rule is one of the compared ones
    for key in ("recall_7d_at_rule_orders", "recall_7d_at_precision_0_5", "recall_7d", "precision"):
        assert same[key] == res[key] or (np.isnan(same[key]) and np.isnan(res[key]))
    assert res["average_precision_7d"] > 0.3           # the rising counters are still learned


def test_nested_choice_reads_only_each_splits_train_drives(fleet, tmp_path, monkeypatch):
    path, _, _, drives, _ = fleet
    seen = []
    real = bb.choose

    def spy(train_drives, *args, **kwargs):
        seen.append({d.serial for d in train_drives})
        return real(train_drives, *args, **kwargs)

    monkeypatch.setattr(bb, "choose", spy)
    out = tmp_path / "nested.json"
    assert bb.main(["--choose", "1", "--splits", "2", "--data", str(path), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    for seed, train in enumerate(seen):
        test = {d.serial for d, t in zip(drives, bb.split(drives, seed)) if t}
        assert train and not train & test and len(train) == 120
    assert res["choose_inner_seeds"] == 1 and len(res["choices"]) == 2
    for s in res["per_split"]:
        c = s["choice"]
        assert c["config"] in ("plain", "variant_prior") and f"{c['config']}/{c['name']}" in c["inner"]
        assert len(c["inner"]) == 2 * len(bb.URGENCY_GRID) * (1 + len(bb.RISE_GRID))
        best = max(c["inner"].values(), key=lambda m: tuple(m[k] for k in bb.CHOICE_KEYS))
        assert c["inner"][f"{c['config']}/{c['name']}"] == best
    assert res["average_precision_7d"] > 0.3
    # the rule alone: the trainer's configuration stays as given
    assert bb.main(["--choose", "1", "--choose-rule-only", "--splits", "1", "--data", str(path), "--json", str(out)]) == 0
    c = json.loads(out.read_text())["per_split"][0]["choice"]
    assert c["config"] == "plain" and len(c["inner"]) == len(bb.URGENCY_GRID) * (1 + len(bb.RISE_GRID))
    # the urgencies tried are an option; 0 alone is the rule without the remaining life
    assert bb.main(["--choose", "1", "--choose-rule-only", "--urgencies", "0", "--splits", "1", "--data", str(path),
                    "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["urgencies"] == [0.0] and "_u" not in res["per_split"][0]["choice"]["name"]
    assert len(res["per_split"][0]["choice"]["inner"]) == 1 + len(bb.RISE_GRID)


def test_the_products_choice_reads_only_each_splits_train_drives(fleet, tmp_path, monkeypatch):
    from detection.prediction import order_choice

    path, _, _, drives, _ = fleet
    seen = []
    real = order_choice.choose_for_model

    def spy(history, *args, **kwargs):
        seen.append({a.asset_id for a in history.assets})
        return real(history, *args, **kwargs)

    monkeypatch.setattr(order_choice, "choose_for_model", spy)
    out = tmp_path / "product.json"
    assert bb.main(["--choose-as-product", "--splits", "1", "--data", str(path), "--json", str(out)]) == 0
    test = {d.serial for d, t in zip(drives, bb.split(drives, 0)) if t}
    assert len(seen) == 1 and len(seen[0]) == 120 and not seen[0] & test
    res = json.loads(out.read_text())
    c = res["per_split"][0]["choice"]
    assert c["config"] == "product" and c["rule"]["urgency_from_h"] == 24.0 * bb.HORIZON_DAYS
    assert c["inner"]["budget"] == "as many orders as held-out failures"
    assert res["order_rule"]["threshold"] == 0.5 and set(res["order_rules"]) == {"first_crossing"}


def test_a_rise_rule_orders_later_than_the_first_crossing():
    # a failing drive whose risk creeps up for weeks, then jumps in its last days
    p = np.r_[np.linspace(0.03, 0.1, 25), 0.2, 0.4]
    d = bb.Drive("F", "M", 0, np.zeros((27, 1)), 27, np.zeros((27, 5)))
    healthy = [bb.Drive(h, "M", 0, np.zeros((27, 1)), None, np.zeros((27, 5))) for h in "HK"]
    flat = [np.full(27, 0.05), np.full(27, 0.06)]      # healthy drives at a steady, higher risk
    plain = bb.order_figures([d, *healthy], [p, *flat], bb.OrderRule(0.04), n_rule_orders=2)
    risen = bb.order_figures([d, *healthy], [p, *flat], bb.OrderRule(0.04, rise_rows=3), n_rule_orders=2)
    assert plain["recall"] == 1.0 and plain["recall_7d"] == 0.0 and plain["orders"] == 3
    assert risen["recall_7d"] == 1.0 and risen["orders"] == 1
    # at two orders the plain ranking orders the failing drive when it passes 0.06, 16 days ahead;
    # the rise rule has one drive to order, on its jump
    assert plain["recall_7d_at_rule_orders"] == 0.0 and risen["recall_7d_at_rule_orders"] == 1.0


@pytest.mark.parametrize("bad", [["--windows", "3,x"], ["--windows", "0,7"], ["--horizon-days", "0"],
                                 ["--order-rise", "-1"], ["--order-rise", "2", "--rise-factor", "0.5"],
                                 ["--choose", "2", "--variant-prior"], ["--choose-rule-only"],
                                 ["--urgency", "-1"], ["--choose", "2", "--urgency", "1"],
                                 ["--choose", "2", "--urgencies", "1,x"], ["--urgency-from-h", "-5"],
                                 ["--choose-as-product", "--choose", "1"]])
def test_bad_configuration_is_a_clear_error(tmp_path, capsys, bad):
    with pytest.raises(SystemExit) as exc:
        bb.main(["--quick", *bad, "--data", str(tmp_path), "--json", str(tmp_path / "x.json")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and any(w in err for w in ("windows", "horizon", "rise", "choose", "urgenc"))


def test_missing_data_is_a_clear_error(tmp_path, capsys):
    assert bb.main(["--quick", "--data", str(tmp_path), "--json", str(tmp_path / "x.json")]) == 2
    assert "pass --data" in capsys.readouterr().err


def test_urgency_orders_the_drive_predicted_to_fail_sooner():
    # two drives equally likely to fail within the week: the failing one's remaining life is
    # predicted at a day in its last week, the healthy one's at three weeks throughout
    n = 27
    p = np.full(n, 0.2)
    fail = bb.Drive("F", "M", 0, np.zeros((n, 1)), n, np.zeros((n, 5)))
    well = bb.Drive("H", "M", 0, np.zeros((n, 1)), None, np.zeros((n, 5)))
    rul_fail = np.r_[np.full(n - 5, 500.0), np.full(5, 24.0)]
    rul_well = np.full(n, 500.0)
    plain = bb.order_figures([fail, well], [p, p], bb.OrderRule(0.5), 1, [rul_fail, rul_well])
    urgent = bb.order_figures([fail, well], [p, p], bb.OrderRule(0.5, urgency=1.0), 1, [rul_fail, rul_well])
    assert plain["recall_7d_at_rule_orders"] == 0.0      # a tie broken by the drive order: too early
    assert urgent["recall_7d_at_rule_orders"] == 1.0     # the failing drive alone, 5 days ahead
    assert bb._rule_name(bb.OrderRule(0.5, 3, 5.0, urgency=2.0)) == "rise_3d_x5_u2"
