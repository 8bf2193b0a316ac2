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


def duty_cycles(rng, n, levels=((0.0, 0.0, 100.0), (10.0, 0.25, 100.0), (20.0, 0.7, 100.0),
                                (25.0, 0.62, 60.0), (35.0, 0.84, 100.0), (42.0, 0.84, 100.0))):
    """C-MAPSS-like operating settings: six flight conditions, each with a little jitter."""
    k = rng.integers(0, len(levels), n)
    return k, np.asarray(levels)[k] + rng.normal(0, [1e-3, 1e-4, 0.0], (n, 3))


def test_clusters_find_the_duty_cycles_and_remove_them():
    rng = np.random.default_rng(7)
    k, settings = duty_cycles(rng, 6000)
    wear = rng.uniform(0, 1, 6000)
    level = np.array([640.0, 600.0, 560.0, 555.0, 530.0, 520.0])[k]
    temp = level + 2.0 * wear + rng.normal(0, 0.5, 6000)       # wear is 4 noise sd, regimes 100+
    X = np.c_[settings, temp]
    norm = RegimeNormalizer([0, 1, 2], n_regimes="auto", method="clusters").fit(X)
    assert norm.n_regimes_ == 6 and norm.explained_ > 0.999
    labels = norm.regimes(X)
    # one learned regime per true condition
    assert all(len(np.unique(labels[k == c])) == 1 for c in range(6))
    z = norm.transform(X)[:, 0]
    assert abs(np.corrcoef(temp, wear)[0, 1]) < 0.1 < 0.7 < np.corrcoef(z, wear)[0, 1]
    d = norm.describe(["alt", "mach", "tra", "temp"])
    assert d["regimes"] == 6 and len(d["centers"]) == 6 and d["condition"] == ["alt", "mach", "tra"]


def test_noise_in_one_condition_is_one_regime():
    rng = np.random.default_rng(8)
    X = np.c_[rng.normal(0, 2e-3, (3000, 2)), np.full(3000, 100.0), rng.normal(5, 1, 3000)]
    norm = RegimeNormalizer([0, 1, 2], n_regimes="auto", method="clusters").fit(X)
    assert norm.n_regimes_ == 1
    assert np.allclose(norm.transform(X)[:, 0], (X[:, 3] - X[:, 3].mean()) / X[:, 3].std())


def test_unknown_condition_and_bad_parameters():
    rng = np.random.default_rng(9)
    _, settings = duty_cycles(rng, 600)
    X = np.c_[settings, rng.normal(size=600)]
    norm = RegimeNormalizer([0, 1, 2], n_regimes=6, method="clusters").fit(X)
    Y = X[:3].copy()
    Y[1, 0] = np.nan
    assert norm.regimes(Y)[1] == -1 and np.isnan(norm.transform(Y)[1, 0])
    with pytest.raises(ValueError, match="clusters"):
        RegimeNormalizer([0], n_regimes="auto").fit(X)
    with pytest.raises(ValueError, match="method"):
        RegimeNormalizer([0], method="magic").fit(X)
    with pytest.raises(ValueError, match="columns"):
        norm.transform(X[:, :3])


def test_training_learns_duty_cycles_from_several_condition_sensors():
    from detection.prediction.history import AssetHistory, ModelHistory
    from detection.prediction.training import fit_normalizer

    rng = np.random.default_rng(10)
    assets = []
    for i in range(4):
        k, settings = duty_cycles(rng, 500)
        temp = np.array([640.0, 600.0, 560.0, 555.0, 530.0, 520.0])[k] + rng.normal(0, 0.5, 500)
        assets.append(AssetHistory(str(i), 0.0, np.c_[settings, temp]))
    hist = ModelHistory("ENG", ["alt", "mach", "tra", "temp"], {"wear": True}, assets, moved={"temp"})
    norm = fit_normalizer(hist, 8, "clusters")
    assert norm.method == "clusters" and norm.n_regimes_ == 6
    assert fit_normalizer(hist, 8).method == "bands"        # the default stays one band sensor
