"""Regime normalisation of the platform's sensors by bands of a condition sensor."""

from __future__ import annotations

import numpy as np
import pytest

from detection.prediction.conditions import RegimeNormalizer


def test_removes_what_the_load_explains():
    rng = np.random.default_rng(4)
    load = rng.uniform(0, 1, 4000)
    temp = 40 + 25 * load + rng.normal(0, 0.5, 4000)
    X = np.c_[load, temp]
    z = RegimeNormalizer([0], n_regimes=8).fit(X).augment(X)[:, 2]
    assert np.std(temp) > 5 and abs(np.mean(z)) < 0.05
    # a +3 degC wear offset stands out against the regime, whatever the load
    worn = RegimeNormalizer([0], n_regimes=8).fit(X).augment(np.c_[load, temp + 3])[:, 2]
    assert np.mean(worn) > np.mean(z) + 0.8


def test_missing_condition_gives_nan_and_shapes_are_checked():
    X = np.c_[np.linspace(0, 1, 50), np.arange(50.0)]
    norm = RegimeNormalizer([0], n_regimes=3).fit(X)
    out = norm.augment(np.array([[np.nan, 5.0], [0.5, np.nan]]))
    assert np.isnan(out[0, 2]) and np.isnan(out[1, 2])
    with pytest.raises(ValueError, match="columns"):
        norm.augment(np.ones((2, 3)))
    with pytest.raises(ValueError):
        RegimeNormalizer([], 3).fit(X)
    with pytest.raises(ValueError, match="no readings"):
        RegimeNormalizer([0], 3).fit(np.c_[np.full(5, np.nan), np.ones(5)])


def test_constant_condition_is_one_regime():
    X = np.c_[np.ones(30), np.arange(30.0)]
    norm = RegimeNormalizer([0], n_regimes=4).fit(X)
    assert len(norm.edges_) == 1 and np.isfinite(norm.augment(X)[:, 2]).all()
