"""Context-novelty kernel against its set-based reference; River wrapper against the batch path."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detection.anomaly.context import ContextNovelty
from detection.kernels import context as K
from detection.kernels import reference


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), n_bins=st.integers(2, 20), tiles=st.integers(1, 4), pad=st.integers(0, 5),
       refractory=st.integers(0, 30), kind=st.sampled_from(["noise", "constant", "steps", "gaps", "wild"]),
       window=st.integers(1, 12), min_surprise=st.sampled_from([0.0, 0.5, 1.5, 4.0]),
       prior_n=st.sampled_from([1.0, 10.0]), slots=st.sampled_from([0, 1, 5, 24]), phase_pad=st.integers(0, 4),
       phase_weight=st.sampled_from([0.0, 0.7, 2.0]))
def test_kernel_matches_reference(seed, n_bins, tiles, pad, refractory, kind, window, min_surprise, prior_n, slots,
                                  phase_pad, phase_weight):
    rng = np.random.default_rng(seed)
    n = 400
    if kind == "constant":
        x = np.full(n, 7.0)
    elif kind == "steps":
        x = np.repeat(rng.normal(size=8), n // 8) + 0.05 * rng.normal(size=n)
    elif kind == "wild":
        x = rng.standard_cauchy(n)
    else:
        x = rng.normal(size=n)
    if kind == "gaps":
        x[rng.random(n) < 0.1] = np.nan
    lo, span = -1.0, 2.5
    phases = rng.integers(-1, slots + 2, size=n)          # -1 and slots .. slots + 1: no phase
    seen = K.new_grid(n_bins, tiles, pad)
    pseen = K.new_phase_grid(n_bins, tiles, phase_pad, slots)
    prev = np.full(tiles, -1, dtype=np.int64)
    fast = K.novelty_scores(x, phases, slots, seen, prev, pseen, lo, span, n_bins, pad, phase_pad, refractory, min_surprise,
                            prior_n, phase_weight, *K.new_counters(window))
    slow = reference.context_novelty(x, lo, span, n_bins, tiles, pad, refractory, window, min_surprise, prior_n,
                                     phases, slots, phase_pad, phase_weight)
    np.testing.assert_array_equal(fast, slow)


def test_one_at_a_time_equals_batch():
    rng = np.random.default_rng(1)
    x = np.sin(np.arange(3000) / 15.0) + 0.05 * rng.normal(size=3000)
    x[[1700, 2400]] += 3.0
    x[rng.random(3000) < 0.02] = np.nan
    det = ContextNovelty(warmup=300, refractory=20, window=5)
    online = []
    for v in x:
        online.append(det.score_one({"s": v}))
        det.learn_one({"s": v})
    batch = ContextNovelty(warmup=300, refractory=20, window=5).score_many(x)
    np.testing.assert_array_equal(np.array(online), batch)
    assert batch[1700] > 0.0


def test_refractory_quiets_one_event_into_one_alarm():
    x = np.r_[np.tile([0.0, 1.0], 200), np.linspace(5, 9, 30), np.tile([0.0, 1.0], 100)]
    loud = ContextNovelty(warmup=100).score_many(x)
    quiet = ContextNovelty(warmup=100, refractory=50).score_many(x)
    assert loud.sum() >= 3 and quiet.sum() == 1.0


def test_novelty_weighs_more_in_a_quiet_series_than_in_a_restless_one():
    rng = np.random.default_rng(2)
    t = np.arange(3000)
    quiet = np.sin(2 * np.pi * t / 50) + 0.01 * rng.normal(size=3000)
    restless = np.sin(2 * np.pi * t / 50) + np.cumsum(rng.normal(size=3000)) * 0.05   # wanders into new levels
    for x in (quiet, restless):
        x[2500:2505] += 2.5
    kw = {"warmup": 300, "window": 10, "min_surprise": 0.01}
    s_quiet = ContextNovelty(**kw).score_many(quiet)[2500:2510].max()
    s_restless = ContextNovelty(**kw).score_many(restless)[2500:2510].max()
    assert s_quiet > s_restless > 0.0
    gated = ContextNovelty(warmup=300, window=10, min_surprise=3.0)
    assert gated.score_many(quiet)[2500:2510].max() > 0.0
    assert gated.score_many(quiet)[:2500].max() == 0.0


def daily_series(days: int = 30, step_s: int = 600, seed: int = 3):
    """A noisy daily cycle (busy by day, quiet at night), 10-minute readings."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * 86400 // step_s) * float(step_s)
    hour = (t % 86400) / 3600
    x = np.where((hour >= 8) & (hour < 20), 10.0, 2.0) + 0.2 * rng.normal(size=len(t))
    return t, x


def test_phase_channel_catches_a_missing_day_the_transitions_cannot():
    t, x = daily_series()
    day = 20 * 144
    x[day + 60: day + 110] = x[day + 60 - 144: day + 110 - 144] - 8.0    # 10:00-18:20 at the night level
    kw = {"warmup": 144 * 5, "window": 30, "min_surprise": 2.0, "refractory": 144}
    plain = ContextNovelty(**kw).score_many(x, t)
    daily = ContextNovelty(phase_slots=24, phase_weight=1.0, **kw).score_many(x, t)
    assert plain.max() == 0.0
    assert np.flatnonzero(daily).tolist() and day + 60 <= np.flatnonzero(daily)[0] < day + 90
    assert daily[:day + 60].max() == 0.0 and daily[day + 110:].max() == 0.0


def test_phase_one_at_a_time_equals_batch_with_datetimes():
    t, x = daily_series(days=12)
    x[1400:1420] = 2.0
    x[np.random.default_rng(4).random(len(x)) < 0.02] = np.nan
    stamps = np.datetime64("2024-03-01T00:00:00") + t.astype("timedelta64[s]")
    kw = {"warmup": 300, "refractory": 20, "window": 5, "min_surprise": 0.5, "phase_slots": 12}
    det = ContextNovelty(**kw)
    online = []
    for v, ts in zip(x, stamps):
        online.append(det.score_one({"s": v}, ts))
        det.learn_one({"s": v}, ts)
    batch = ContextNovelty(**kw).score_many(x, stamps)
    np.testing.assert_array_equal(np.array(online), batch)
    np.testing.assert_array_equal(batch, ContextNovelty(**kw).score_many(x, t))   # seconds = datetimes
    assert batch[1400:1420].max() > 0.0


def test_no_time_means_no_phase_channel():
    t, x = daily_series(days=10)
    kw = {"warmup": 300, "window": 10, "min_surprise": 1.0, "refractory": 50}
    np.testing.assert_array_equal(ContextNovelty(phase_slots=24, **kw).score_many(x),
                                  ContextNovelty(**kw).score_many(x))


def test_bad_phase_parameters_raise():
    for bad in ({"phase_slots": -1}, {"phase_period": 0.0}, {"phase_pad": -1}, {"phase_weight": -0.5}):
        with pytest.raises(ValueError):
            ContextNovelty(**bad)
    with pytest.raises(ValueError):
        ContextNovelty(warmup=10, phase_slots=24).score_many(np.zeros(50), np.zeros(49))


def test_nab_adapter_runs_the_daily_entry_on_a_nab_shaped_series():
    from detection.nab.detectors import DAILY_PARAMS, context_scores

    t, x = daily_series(days=30, step_s=300)
    day = 25 * 288
    x[day + 120: day + 220] -= 8.0                                        # 10:00-18:20 at the night level
    stamps = np.datetime64("2014-04-01T00:00:00") + t.astype("timedelta64[s]")
    probation = int(0.15 * len(x))
    s = context_scores(x, probation, stamps, DAILY_PARAMS)
    assert s.shape == x.shape and s[:probation].max() == 0.0 and 0.0 <= s.min() and s.max() < 1.0
    assert s[day + 120: day + 220].max() > 0.0
    assert context_scores(x, probation)[day + 120: day + 220].max() == 0.0
