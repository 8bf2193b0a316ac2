"""Context-novelty kernel against its set-based reference; River wrapper against the batch path."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from detection.anomaly.context import ContextNovelty
from detection.kernels import context as K
from detection.kernels import reference


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), n_bins=st.integers(2, 20), tiles=st.integers(1, 4), pad=st.integers(0, 5),
       refractory=st.integers(0, 30), kind=st.sampled_from(["noise", "constant", "steps", "gaps", "wild"]),
       window=st.integers(1, 12), min_surprise=st.sampled_from([0.0, 0.5, 1.5, 4.0]),
       prior_n=st.sampled_from([1.0, 10.0]))
def test_kernel_matches_reference(seed, n_bins, tiles, pad, refractory, kind, window, min_surprise, prior_n):
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
    seen = K.new_grid(n_bins, tiles, pad)
    prev = np.full(tiles, -1, dtype=np.int64)
    fast = K.novelty_scores(x, seen, prev, lo, span, n_bins, pad, refractory, min_surprise, prior_n,
                            *K.new_counters(window))
    slow = reference.context_novelty(x, lo, span, n_bins, tiles, pad, refractory, window, min_surprise, prior_n)
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
