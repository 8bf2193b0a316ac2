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
       window=st.integers(1, 12), min_frac=st.floats(0.0, 1.0))
def test_kernel_matches_reference(seed, n_bins, tiles, pad, refractory, kind, window, min_frac):
    min_count = max(1, round(min_frac * window))
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
    fast = K.novelty_scores(x, seen, prev, lo, span, n_bins, pad, refractory, min_count, *K.new_counters(window))
    slow = reference.context_novelty(x, lo, span, n_bins, tiles, pad, refractory, window, min_count)
    np.testing.assert_array_equal(fast, slow)


def test_one_at_a_time_equals_batch():
    rng = np.random.default_rng(1)
    x = np.sin(np.arange(3000) / 15.0) + 0.05 * rng.normal(size=3000)
    x[[1700, 2400]] += 3.0
    x[rng.random(3000) < 0.02] = np.nan
    det = ContextNovelty(warmup=300, refractory=20, window=5, min_count=1)
    online = []
    for v in x:
        online.append(det.score_one({"s": v}))
        det.learn_one({"s": v})
    batch = ContextNovelty(warmup=300, refractory=20, window=5, min_count=1).score_many(x)
    np.testing.assert_array_equal(np.array(online), batch)
    assert batch[1700] > 0.0


def test_refractory_quiets_one_event_into_one_alarm():
    x = np.r_[np.tile([0.0, 1.0], 200), np.linspace(5, 9, 30), np.tile([0.0, 1.0], 100)]
    loud = ContextNovelty(warmup=100).score_many(x)
    quiet = ContextNovelty(warmup=100, refractory=50).score_many(x)
    assert loud.sum() >= 3 and quiet.sum() == 1.0


def test_confirmation_needs_several_novel_contexts():
    rng = np.random.default_rng(2)
    x = rng.normal(size=2000)
    x[1500:1510] += 8.0                           # an event: ten readings at a new level
    x[1000] += 8.0                                # a lone spike
    single = ContextNovelty(warmup=300, window=10, min_count=1).score_many(x)
    confirmed = ContextNovelty(warmup=300, window=10, min_count=3).score_many(x)
    assert single[1000] > 0 and confirmed[1000:1010].max() == 0.0
    assert confirmed[1500:1510].max() > 0.0
