"""Bucket samples (``detection.kernels.resample``): the Numba kernel agrees with its reference,
passes slow devices through untouched, decimates fast ones to one reading per unit, and floors
the bucket test's band by the sensor's resolution."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from detection.kernels.resample import bucket_samples, bucket_samples_reference, new_state


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 120), st.integers(1, 5), st.integers(1, 4),
       st.sampled_from([0.0, 0.3, 1.0]), st.sampled_from([1.0, 30.0, 60.0, 600.0, 1000.0]),
       st.booleans(), st.sampled_from([0.0, 0.01, 0.5]), st.sampled_from([0.0, 2.0]))
def test_kernel_matches_reference(seed, n, n_dev, n_s, nan_frac, step, shuffle, quantum, res_floor):
    rng = np.random.default_rng(seed)
    dev = rng.integers(0, n_dev, n).astype(np.int64)
    t = 1.7e9 + np.cumsum(rng.exponential(step, n)).round(3)
    if shuffle:                                         # out-of-order rows too
        t = t[rng.permutation(n)]
    X = rng.normal(size=(n, n_s))
    if quantum:                                         # quantised input: the resolution floor acts
        X = np.round(X * rng.uniform(0.005, 0.05) / quantum) * quantum
    if rng.random() < 0.2:
        X[:] = 3.0                                      # constant input
    X[rng.random((n, n_s)) < nan_frac] = np.nan
    s1, s2 = new_state(n_dev, n_s), new_state(n_dev, n_s)
    for lo, hi in ((0, n // 2), (n // 2, n)):           # two calls: state carries over
        a = bucket_samples(dev[lo:hi], t[lo:hi], X[lo:hi], 600.0, 0.2, res_floor, *s1)
        b = bucket_samples_reference(dev[lo:hi], t[lo:hi], X[lo:hi], 600.0, 0.2, res_floor, *s2)
        for x, y in zip(a[:3], b[:3]):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_allclose(a[3], b[3], rtol=1e-7, atol=1e-9, equal_nan=True)   # SciPy tails
    for x, y in zip(s1, s2):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=0, equal_nan=True)


def test_a_device_reporting_once_per_interval_passes_through_untouched():
    rng = np.random.default_rng(1)
    t = 1.7e9 + 37.0 + 600.0 * np.arange(200) + rng.uniform(-5, 5, 200)   # jittered, off the grid
    X = rng.normal(size=(200, 3))
    X[rng.random((200, 3)) < 0.1] = np.nan
    dev, tt, M, _ = bucket_samples(np.zeros(200, np.int64), t, X, 600.0, 0.2, 2.0, *new_state(1, 3))
    np.testing.assert_array_equal(dev, 0)
    np.testing.assert_array_equal(tt, t)
    np.testing.assert_array_equal(M, X)


def test_a_fast_device_is_decimated_per_interval_and_each_bucket_leaves_on_its_last_reading():
    t = 1.7e9 - (1.7e9 % 600) + np.arange(0.0, 3600.0, 1.0)     # 1 Hz for an hour, on the grid
    X = np.stack([np.sin(t), np.full_like(t, 2.0)], axis=1)
    X[599, 0] = np.nan                                          # the last value of a bucket missing
    dev, tt, M, _ = bucket_samples(np.zeros(len(t), np.int64), t, X, 600.0, 0.2, 2.0, *new_state(1, 2))
    # the first reading alone (no cadence known yet), then one row per 10 minutes
    assert len(tt) == 7
    last = 600 * np.arange(1, 7) - 1
    np.testing.assert_array_equal(tt[1:], t[last])
    np.testing.assert_array_equal(M[2:, 0], X[last[1:], 0])
    assert M[1, 0] == X[598, 0]                                 # the newest value present
    np.testing.assert_array_equal(M[:, 1], 2.0)


def test_a_missing_last_reading_hands_the_bucket_on_with_the_next_one():
    t = np.array([0.0, 60.0, 120.0, 180.0, 660.0])            # the bucket [0, 600) stops early
    X = np.arange(5.0)[:, None]
    dev, tt, M, _ = bucket_samples(np.zeros(5, np.int64), t, X, 600.0, 0.5, 2.0, *new_state(1, 1))
    assert tt.tolist() == [0.0, 180.0] and M[:, 0].tolist() == [0.0, 3.0]


def test_the_service_buckets_fast_devices_and_checkpoints_a_pending_bucket():
    from detection.catalog import ModelInfo
    from detection.service import ModelState, ServiceConfig

    info = ModelInfo("M", ["load", "temp"], ["fouling"], np.array([[False, True]]),
                     np.array([[0.0, 1.0]]), np.array([False]), np.array([False]), {"fouling": 8.0})
    st = ModelState(info, ServiceConfig())
    idx = st.rows_for(["fast"] * 15 + ["slow"] * 2)
    t = np.concatenate([1.7e9 - (1.7e9 % 600) + 60.0 * np.arange(15), [1.7e9, 1.7e9 + 600.0]])
    X = np.ones((17, 2))
    out_idx, out_t, _, _ = st.bucket(idx, X, t)
    # fast: its first reading, then the bucket of minutes 1-9; slow: both readings as they are
    assert sorted(out_idx.tolist()) == [0, 0, 1, 1]
    assert st.buckets[1][0]                                # minutes 10-14 pending
    restored = ModelState(info, ServiceConfig())
    restored.load_dict(st.to_dict())
    a = st.bucket(st.rows_for(["fast"]), np.ones((1, 2)), np.array([t[14] + 600.0]))
    b = restored.bucket(restored.rows_for(["fast"]), np.ones((1, 2)), np.array([t[14] + 600.0]))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert len(a[0]) == 1 and a[1][0] == t[14]             # the pending bucket left, as restored
    st.reset("fast")
    assert not st.buckets[1][0]


def test_a_fast_steady_quantised_sensor_counts_no_exceedances_but_a_real_spike_does():
    """A pressure transmitter holding 3.15 bar in 0.01 steps, one reading a second for a day: its
    band's spread is a fraction of a step, so without the floor every flicker of one step is an
    exceedance; floored at two steps (the detector set's default) none is, and a spike of 0.2
    (20 steps) still is."""
    rng = np.random.default_rng(3)
    n = 86400
    t = 1.7e9 - (1.7e9 % 600) + np.arange(float(n))
    x = 3.15 + np.where(rng.random(n) < 0.002, 0.01, 0.0)             # rare one-step flickers
    X = np.round(x, 2)[:, None]
    floored = bucket_samples(np.zeros(n, np.int64), t, X, 600.0, 0.2, 2.0, *new_state(1, 1))[3]
    unfloored = bucket_samples(np.zeros(n, np.int64), t, X, 600.0, 0.2, 0.0, *new_state(1, 1))[3]
    assert np.nanmax(np.abs(unfloored)) > 6.0                          # the flicker looks like a fault
    assert np.nanmax(np.abs(floored)) < 1.0                            # floored: nothing stands out
    X[n // 2 + 7, 0] += 0.2
    ex = bucket_samples(np.zeros(n, np.int64), t, X, 600.0, 0.2, 2.0, *new_state(1, 1))[3][:, 0]
    assert np.nanmax(ex) > 6.0 and np.sum(ex > 3.0) == 1               # one bucket, the spike's


def test_a_checkpoint_of_another_layout_is_not_compatible():
    from detection.kernels.resample import compatible

    assert compatible(new_state(3, 2), 2)
    assert not compatible(new_state(3, 2), 3)
    old = new_state(3, 2)[:-1] + (np.zeros((3, 2, 7)),)                # the raw band before resolution
    assert not compatible(old, 2)


def test_slow_drift_is_not_a_spike_but_a_spike_on_a_drift_is():
    """The bucket test looks at each reading against the readings just before it: a residual
    wandering by many standard deviations over hours (the level detectors' business) counts no
    exceedance, a one-reading spike on top of it does."""
    rng = np.random.default_rng(4)
    n = 6 * 3600
    t = 1.7e9 - (1.7e9 % 600) + np.arange(float(n))
    x = rng.normal(0.0, 0.5, n) + 10.0 * np.sin(np.arange(n) / n * 2 * np.pi)   # +-20 sd over 6 h
    ex = bucket_samples(np.zeros(n, np.int64), t, x[:, None], 600.0, 0.2, 2.0, *new_state(1, 1))[3][:, 0]
    assert np.nanmax(np.abs(ex)) < 3.0
    x[4 * 3600 + 77] += 6.0                                              # a one-second spike, 12 sd
    ex = bucket_samples(np.zeros(n, np.int64), t, x[:, None], 600.0, 0.2, 2.0, *new_state(1, 1))[3][:, 0]
    assert np.nanmax(ex) > 6.0 and np.sum(np.abs(ex) > 3.0) == 1
