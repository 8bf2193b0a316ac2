"""NAB scorer on hand-made series: where a detection falls decides what it is worth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detection.nab.corpus import Profile, Series, probation_length
from detection.nab.scoring import label_rows, raw_at, score_corpus, scaled_sigmoid, sweep

STD = Profile("standard", 1.0, 0.11, 1.0)
LOW_FN = Profile("reward_low_FN_rate", 1.0, 0.11, 2.0)
T0 = np.datetime64("2014-01-01T00:00:00", "s")
TS = T0 + np.arange(100) * np.timedelta64(60, "s")
WIN = [(TS[40], TS[49])]            # rows 40..49, width 10; probation = 15 rows


def S(y: float) -> float:
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def one_hot(*rows: int) -> np.ndarray:
    s = np.zeros(100)
    s[list(rows)] = 1.0
    return s


def best_raw(scores, windows=WIN, profile=STD) -> float:
    lab = label_rows(TS, windows, probation_length(100))
    return sweep([scores], [lab], profile).raw


def test_detection_at_window_start_is_worth_a_full_true_positive():
    assert best_raw(one_hot(40)) == pytest.approx(1.0)


def test_detection_at_window_end_is_worth_less():
    assert best_raw(one_hot(49)) == pytest.approx(S(-0.1) / S(-1.0))
    assert best_raw(one_hot(45)) == pytest.approx(S(-0.5) / S(-1.0))


def test_only_the_earliest_detection_in_a_window_counts():
    assert best_raw(one_hot(41, 45, 49)) == pytest.approx(S(-0.9) / S(-1.0))


def test_detection_after_the_window_is_a_cheap_false_positive_and_the_window_is_missed():
    lab = label_rows(TS, WIN, probation_length(100))
    fp = 0.11 * S(abs(49 - 55) / 9)
    assert raw_at(one_hot(55), lab, STD, 0.5) == pytest.approx(-1.0 + fp)
    far = raw_at(one_hot(99), lab, STD, 0.5)       # y = 50/9 > 3: full cost
    assert far == pytest.approx(-1.0 - 0.11)
    assert -0.11 < fp < 0


def test_false_positive_before_any_window_costs_full_weight():
    lab = label_rows(TS, WIN, probation_length(100))
    assert raw_at(one_hot(20), lab, STD, 0.5) == pytest.approx(-1.0 - 0.11)
    assert raw_at(one_hot(20, 40), lab, STD, 0.5) == pytest.approx(1.0 - 0.11)


def test_a_miss_costs_a_fn_per_profile():
    assert best_raw(np.zeros(100)) == pytest.approx(-1.0)
    assert best_raw(np.zeros(100), profile=LOW_FN) == pytest.approx(-2.0)


def test_probationary_rows_count_for_nothing():
    lab = label_rows(TS, WIN, probation_length(100))
    assert probation_length(100) == 15
    assert raw_at(one_hot(3, 14), lab, STD, 0.5) == pytest.approx(-1.0)   # FPs in probation are free
    early = [(TS[5], TS[12])]                                               # window inside probation
    lab2 = label_rows(TS, early, probation_length(100))
    assert raw_at(np.zeros(100), lab2, STD, 0.5) == 0.0                    # not counted: no FN
    assert best_raw(np.zeros(100), windows=early) == 0.0


def test_sweep_picks_the_best_threshold_and_ties_switch_on_together():
    s = np.zeros(100)
    s[40] = 0.9                       # a true positive
    s[[20, 21, 22]] = 0.5             # three FPs sharing one score
    lab = label_rows(TS, WIN, probation_length(100))
    res = sweep([s], [lab], STD)
    assert res.threshold == 0.9 and res.raw == pytest.approx(1.0) and res.tp == 1 and res.fp == 0
    s[40] = 0.5                       # now the true positive shares its score with the FPs
    res = sweep([s], [lab], STD)
    assert res.threshold == 0.5 and res.tp == 1 and res.fp == 3
    assert res.raw == pytest.approx(1.0 - 3 * 0.11)


def test_window_limits_with_fractional_seconds_match_rows():
    from detection.nab.corpus import _parse_time
    lab = label_rows(TS, [(_parse_time("2014-01-01 00:40:00.000000"), _parse_time("2014-01-01 00:49:00.000000"))], 15)
    assert np.flatnonzero(lab.label).tolist() == list(range(40, 50))


def test_normalisation_null_zero_perfect_hundred():
    ser = Series("cat/x.csv", TS, np.zeros(100), WIN)
    profiles = [STD, LOW_FN]
    perfect = score_corpus([ser], [one_hot(40)], profiles)
    null = score_corpus([ser], [np.zeros(100)], profiles)
    for p in ("standard", "reward_low_FN_rate"):
        assert perfect[p]["score"] == pytest.approx(100.0)
        assert null[p]["score"] == pytest.approx(0.0)


def test_scaled_sigmoid_values():
    assert scaled_sigmoid(np.array([-1.0]))[0] == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(np.array([0.0]))[0] == pytest.approx(0.0)
    assert scaled_sigmoid(np.array([3.0]))[0] == -1.0     # NAB: y >= 3 is a full false positive
