"""RULRegressor and HorizonClassifier follow scikit-learn's estimator contract and validate
their input at fit and predict."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from detection.prediction.horizon import HorizonClassifier
from detection.prediction.rul import RULRegressor

SMALL = dict(n_members=2, max_iter=8, learning_rate=0.3, row_fraction=1.0, min_samples_leaf=5, random_state=0)

RUL_EXPECTED = {
    "check_sample_weight_equivalence_on_dense_data":
        "HistGradientBoosting bins ignore sample weights (sklearn lists the same for it)",
}


@pytest.fixture(autouse=True)
def one_thread():
    # tiny fits: OpenMP spinning on a shared 2-core machine costs far more than it gives
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


def expected_failures(est):
    if isinstance(est, RULRegressor):
        return RUL_EXPECTED
    return {}


@parametrize_with_checks([RULRegressor(cap=None, **SMALL), HorizonClassifier(**SMALL)],
                         expected_failed_checks=expected_failures)
def test_sklearn_contract(estimator, check):
    check(estimator)


def test_rul_targets_are_capped_and_predictions_clipped():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    y = np.abs(X[:, 0]) * 100
    pred = RULRegressor(cap=50, **SMALL).fit(X, y).predict(X)
    assert pred.max() <= 50 and pred.min() >= 0


def test_rul_refuses_bad_input():
    X = np.ones((10, 2))
    with pytest.raises(ValueError, match=">= 0"):
        RULRegressor(**SMALL).fit(X, -np.ones(10))
    with pytest.raises(ValueError, match="cap"):
        RULRegressor(cap=0, **SMALL).fit(X, np.ones(10))
    with pytest.raises(ValueError, match="n_members"):
        RULRegressor(n_members=0).fit(X, np.ones(10))
    model = RULRegressor(**SMALL).fit(X, np.arange(10.0))
    with pytest.raises(ValueError, match="features"):
        model.predict(np.ones((3, 5)))


def test_nan_features_are_accepted():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    X[rng.random(X.shape) < 0.2] = np.nan
    y = np.where(np.nan_to_num(X[:, 0]) > 0, 1, 0)
    p = HorizonClassifier(**SMALL).fit(X, y).p_fail(X)
    assert p.shape == (200,) and np.all((p >= 0) & (p <= 1))


def test_horizon_single_class_and_unknown_negative():
    X = np.random.default_rng(2).normal(size=(20, 2))
    clf = HorizonClassifier(negative_class="", **SMALL).fit(X, np.array([""] * 20))
    assert np.all(clf.p_fail(X) == 0) and clf.predict_mode(X)[0] is None
    with pytest.raises(ValueError, match="negative_class"):
        HorizonClassifier(negative_class="none", **SMALL).fit(X, np.array(["a", "b"] * 10))


def test_every_member_sees_every_class():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 2))
    y = np.array(["" ] * 399 + ["rare"])
    clf = HorizonClassifier(negative_class="", n_members=3, max_iter=5, row_fraction=0.3, random_state=0)
    proba = clf.fit(X, y).predict_proba(X)
    assert proba.shape == (400, 2)
