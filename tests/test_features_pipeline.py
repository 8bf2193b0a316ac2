"""The feature pipeline: column names line up, no window reaches across groups, and the last
row over a trailing window equals the online features of that window."""

from __future__ import annotations

import numpy as np
import pytest

from detection.features.pipeline import FeatureSpec, grouped_features, window_features

SPEC = FeatureSpec(windows=(3, 7), ewm_alphas=(0.5,))


def test_names_match_columns():
    x = np.random.default_rng(0).normal(size=(20, 2))
    f = window_features(x, SPEC)
    names = SPEC.names(["vib", "temp"])
    assert f.shape == (20, len(names)) and len(set(names)) == len(names)
    col = names.index("temp__mean_3")
    np.testing.assert_allclose(f[-1, col], x[-3:, 1].mean())
    assert names.index("vib__value") == 0 and f[5, 0] == x[5, 0]


def test_groups_do_not_leak():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(15, 2)), rng.normal(size=(12, 2))
    f = grouped_features(np.vstack([a, b]), [15, 12], SPEC)
    f2 = grouped_features(np.vstack([a * 100, b]), [15, 12], SPEC)
    np.testing.assert_array_equal(f[15:], f2[15:])
    np.testing.assert_array_equal(f[15:], window_features(b, SPEC))
    with pytest.raises(ValueError, match="sum"):
        grouped_features(np.vstack([a, b]), [15, 11], SPEC)


def test_last_row_needs_only_the_trailing_window():
    spec = FeatureSpec(windows=(4, 9), ewm_alphas=())
    x = np.random.default_rng(2).normal(size=(50, 3))
    x[::7, 1] = np.nan
    full = window_features(x, spec)[-1]
    online = window_features(x[-spec.history:], spec)[-1]
    np.testing.assert_allclose(full, online, rtol=1e-12, equal_nan=True)


def test_rise_columns_follow_each_window():
    spec = FeatureSpec(windows=(3, 7), ewm_alphas=(), crossings=False, rise=True)
    x = np.c_[np.r_[np.zeros(6), 2.0, 2.0, 5.0, 5.0], np.arange(10.0)]
    f = dict(zip(spec.names(["sectors", "hours"]), window_features(x, spec)[-1]))
    assert f["sectors__rise_3"] == 3.0 and f["sectors__rise_7"] == 5.0 and f["hours__rise_7"] == 6.0
    without = FeatureSpec(windows=(3, 7), ewm_alphas=(), crossings=False)
    assert not any("rise" in n for n in without.names(["a"]))
    cols = [i for i, n in enumerate(spec.names(["sectors", "hours"])) if "rise" not in n]
    np.testing.assert_array_equal(window_features(x, spec)[:, cols], window_features(x, without))
    online = window_features(x[-spec.history:], spec)[-1]
    np.testing.assert_array_equal(window_features(x, spec)[-1], online)


def test_spec_pickled_before_rise_has_no_rise():
    spec = FeatureSpec(windows=(3,), ewm_alphas=())
    old = object.__new__(FeatureSpec)
    object.__setattr__(old, "__dict__", {k: v for k, v in vars(spec).items() if k != "rise"})
    assert old.names(["a"]) == spec.names(["a"])
    np.testing.assert_array_equal(window_features(np.ones((5, 1)), old), window_features(np.ones((5, 1)), spec))


def test_all_missing_sensor_gives_nan_features_not_errors():
    x = np.c_[np.arange(10.0), np.full(10, np.nan)]
    f = window_features(x, SPEC)
    per = len(SPEC.per_sensor())
    assert np.isnan(f[:, per:]).all() and np.isfinite(f[-1, :per]).all()


@pytest.mark.parametrize("kwargs", [dict(windows=()), dict(windows=(0,)), dict(ewm_alphas=(2.0,))])
def test_bad_spec_is_refused(kwargs):
    with pytest.raises((ValueError, TypeError)):
        FeatureSpec(**kwargs)
