"""Every compiled feature kernel agrees with its plain NumPy reference (NaN, inf, constant input
and short series included), and the public wrappers refuse bad arguments clearly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from detection.features import reference as ref
from detection.features.baseline import baseline_delta
from detection.features.crossings import rolling_crossing_rate
from detection.features.ewm import ewm_mean
from detection.features.regime import regime_stats, regime_zscore
from detection.features.rolling_level import rolling_mean
from detection.features.rolling_rise import rolling_rise
from detection.features.rolling_slope import rolling_slope
from detection.features.rolling_spread import rolling_std

values = st.one_of(
    st.floats(-1e3, 1e3, allow_nan=False),
    st.just(np.nan),
    st.just(np.inf),
    st.sampled_from([0.0, 1.0, -2.5]),  # repeated values -> constant stretches
)
series = st.integers(0, 3).flatmap(
    lambda k: arrays(np.float64, st.tuples(st.integers(0, 40), st.just(k)) if k else st.integers(0, 40),
                     elements=values)
)
windows = st.integers(1, 12)
SETTINGS = settings(max_examples=120, deadline=None, derandomize=True)


def assert_agree(got, want, atol=1e-7):
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=atol, equal_nan=True)


@SETTINGS
@given(series, windows)
def test_rolling_mean_matches_reference(x, w):
    assert_agree(rolling_mean(x, w), ref.rolling_mean(x, w))


@SETTINGS
@given(series, windows)
def test_rolling_std_matches_reference(x, w):
    assert_agree(rolling_std(x, w), ref.rolling_std(x, w), atol=1e-6)


@SETTINGS
@given(series, windows)
def test_rolling_slope_matches_reference(x, w):
    assert_agree(rolling_slope(x, w), ref.rolling_slope(x, w), atol=1e-6)


@SETTINGS
@given(series, windows)
def test_rolling_rise_matches_reference(x, w):
    got = rolling_rise(x, w)
    assert_agree(got, ref.rolling_rise(x, w))
    assert np.all(got[~np.isnan(got)] >= 0)


def test_rolling_rise_counts_what_a_counter_added():
    # reallocated sectors of a drive first seen at 8: level 8 is history, the rise is what is new
    sectors = np.array([8.0, 8.0, np.nan, 8.0, 11.0, 11.0, 16.0, 16.0, 16.0, 16.0])
    np.testing.assert_array_equal(rolling_rise(sectors, 3), [0, 0, 0, 0, 3, 3, 5, 5, 0, 0])
    np.testing.assert_array_equal(rolling_rise(sectors, 7)[[3, 6, 9]], [0, 8, 8])
    assert np.isnan(rolling_rise(np.array([np.nan, np.nan, 2.0]), 2)[:2]).all()
    # a reset (counter cleared, sensor replaced) is not a rise
    np.testing.assert_array_equal(rolling_rise(np.array([50.0, 0.0, 0.0]), 3), [0, 0, 0])


@SETTINGS
@given(series, windows)
def test_crossing_rate_matches_reference(x, w):
    got = rolling_crossing_rate(x, w)
    assert_agree(got, ref.rolling_crossing_rate(x, w))
    assert np.all((got[~np.isnan(got)] >= 0) & (got[~np.isnan(got)] <= 1))


@SETTINGS
@given(series, st.floats(0.01, 1.0))
def test_ewm_matches_reference(x, alpha):
    assert_agree(ewm_mean(x, alpha), ref.ewm_mean(x, alpha), atol=1e-6)


@SETTINGS
@given(series, windows)
def test_baseline_delta_matches_reference(x, n0):
    assert_agree(baseline_delta(x, n0), ref.baseline_delta(x, n0), atol=1e-6)


@SETTINGS
@given(
    arrays(np.float64, st.tuples(st.integers(0, 40), st.integers(1, 3)), elements=values),
    st.integers(1, 4),
    st.data(),
)
def test_regime_kernels_match_reference(x, n_regimes, data):
    labels = np.array(data.draw(st.lists(st.integers(-1, n_regimes), min_size=len(x), max_size=len(x))),
                      dtype=np.int64)
    means, stds = regime_stats(x, labels, n_regimes)
    rmeans, rstds = ref.regime_stats(x, labels, n_regimes)
    assert_agree(means, rmeans)
    assert_agree(stds, rstds, atol=1e-6)
    assert_agree(regime_zscore(x, labels, means, stds), ref.regime_zscore(x, labels, rmeans, rstds), atol=1e-6)


@pytest.mark.parametrize("kernel", [rolling_mean, rolling_std, rolling_slope, rolling_crossing_rate,
                                    baseline_delta, rolling_rise])
def test_constant_input(kernel):
    x = np.full(30, 7.3)
    out = kernel(x, 8)
    expect = {rolling_mean: 7.3, rolling_std: 0.0, rolling_slope: 0.0, rolling_crossing_rate: 0.0,
              baseline_delta: 0.0, rolling_rise: 0.0}[kernel]
    finite = out[~np.isnan(out)]
    np.testing.assert_allclose(finite, expect, atol=1e-9)
    assert finite.size >= 29


def test_large_offset_keeps_precision():
    rng = np.random.default_rng(7)
    x = 1e7 + rng.normal(0, 1e-2, 200) + 1e-3 * np.arange(200)
    np.testing.assert_allclose(rolling_std(x, 50)[49:], ref.rolling_std(x, 50)[49:], rtol=1e-5)
    np.testing.assert_allclose(rolling_slope(x, 50)[49:], ref.rolling_slope(x, 50)[49:], rtol=1e-3, atol=1e-6)


def test_columns_are_independent():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 3))
    x[rng.random(x.shape) < 0.2] = np.nan
    for kernel in (rolling_mean, rolling_std, rolling_slope, rolling_crossing_rate, rolling_rise):
        full = kernel(x, 9)
        for c in range(3):
            np.testing.assert_array_equal(full[:, c], kernel(x[:, c], 9))


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "5", None])
def test_bad_window_is_refused(bad):
    with pytest.raises((ValueError, TypeError)):
        rolling_mean(np.ones(5), bad)


@pytest.mark.parametrize("alpha", [0.0, -0.1, 1.5, float("nan")])
def test_bad_alpha_is_refused(alpha):
    with pytest.raises(ValueError):
        ewm_mean(np.ones(5), alpha)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="1-D or 2-D"):
        rolling_slope(np.ones((2, 2, 2)), 3)
    with pytest.raises(ValueError, match="one regime label per row"):
        regime_stats(np.ones((4, 2)), np.zeros(3, dtype=int), 1)
    with pytest.raises(TypeError, match="integers"):
        regime_stats(np.ones(4), np.zeros(4), 1)
