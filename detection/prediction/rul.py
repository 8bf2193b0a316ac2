"""Remaining useful life regression with a piecewise-linear target.

Early in a life the remaining life is not observable from the readings, so the target is
capped (``min(rul, cap)``, Heimes 2008): the model learns "healthy" for everything above the
cap and a linear run-down below it. Predictions are clipped to ``[0, cap]``.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> rul = rng.uniform(0, 200, 600)
>>> X = np.c_[np.maximum(0, 100 - rul) + rng.normal(0, 2, 600), rng.normal(size=600)]
>>> model = RULRegressor(cap=100, n_members=2, max_iter=60, random_state=0).fit(X, rul)
>>> pred = model.predict(X)
>>> float(np.sqrt(np.mean((pred - np.minimum(rul, 100)) ** 2))) < 10
True
"""

from __future__ import annotations

import numpy as np
from crepes import ConformalPredictiveSystem
from crepes.extras import binning
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from detection.prediction._ensemble import bootstrap_rows, check_params, member_params, member_seeds


class RULRegressor(RegressorMixin, BaseEstimator):
    """Bagged gradient-boosting regressor of remaining useful life (any time unit).

    Parameters
    ----------
    cap : float or None
        Targets above ``cap`` are trained as ``cap`` and predictions are clipped to it;
        ``None`` disables the piecewise target.
    n_members : int
        Gradient-boosting models averaged (bootstrap rows, feature subsample, own seed).
    max_iter, learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization, max_features :
        Passed to each ``HistGradientBoostingRegressor`` member.
    row_fraction : float
        Fraction of rows each member sees (sampled without replacement; 1.0 = all).
    random_state : int, RandomState or None
    """

    def __init__(
        self,
        cap: float | None = 125.0,
        n_members: int = 5,
        max_iter: int = 300,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 40,
        l2_regularization: float = 1.0,
        max_features: float = 0.5,
        row_fraction: float = 0.8,
        random_state=None,
    ):
        self.cap = cap
        self.n_members = n_members
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.max_features = max_features
        self.row_fraction = row_fraction
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        check_params(self)
        if self.cap is not None and not float(self.cap) > 0:
            raise ValueError(f"cap must be > 0 or None, got {self.cap}")
        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan", y_numeric=True)
        y = y.astype(np.float64)
        if np.any(y < 0):
            raise ValueError("remaining useful life targets must be >= 0")
        target = np.minimum(y, self.cap) if self.cap is not None else y
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        self.estimators_ = []
        for seed in member_seeds(self.random_state, int(self.n_members)):
            rows = bootstrap_rows(X.shape[0], seed, float(self.row_fraction))
            member = HistGradientBoostingRegressor(**member_params(self, len(rows), seed))
            w = None if sample_weight is None else sample_weight[rows]
            member.fit(X[rows], target[rows], sample_weight=w)
            self.estimators_.append(member)
        self.n_iter_ = max(m.n_iter_ for m in self.estimators_)
        return self

    def predict(self, X):
        check_is_fitted(self, "estimators_")
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan")
        pred = np.mean([m.predict(X) for m in self.estimators_], axis=0)
        upper = float(self.cap) if self.cap is not None else np.inf
        return np.clip(pred, 0.0, upper)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.target_tags.positive_only = True  # remaining life is never negative
        return tags


class RULInterval:
    """Conformal interval of the time to failure around :class:`RULRegressor`'s prediction.

    A Mondrian conformal predictive system (crepes) calibrated on held-out assets' residuals
    (true capped remaining life minus prediction), binned by the predicted remaining life (the
    error of "fails in 20 h" is not the error of "fine for a month"). ``predict`` gives the
    ``lower``-th and ``upper``-th percentiles, clipped to ``[0, cap]`` (at the cap: "at least").

    >>> rng = np.random.default_rng(0)
    >>> pred = rng.uniform(0, 700, 2000)
    >>> true = np.clip(pred + rng.normal(0, 1, 2000) * (10 + 0.2 * pred), 0, 720)
    >>> iv = RULInterval(cap=720).fit(pred, true)
    >>> lo, hi = iv.predict(pred)
    >>> 0.75 < float(np.mean((lo <= true) & (true <= hi))) < 0.85
    True
    >>> bool(np.all(lo <= hi)), float(lo.min()) >= 0
    (True, True)
    """

    def __init__(self, cap: float | None = None, lower: float = 10.0, upper: float = 90.0, n_bins: int = 4,
                 seed: int = 0):
        self.cap, self.lower, self.upper, self.n_bins, self.seed = cap, lower, upper, n_bins, seed

    def fit(self, predicted, true) -> "RULInterval":
        predicted = np.asarray(predicted, dtype=np.float64)
        true = np.asarray(true, dtype=np.float64)
        ok = np.isfinite(predicted) & np.isfinite(true)
        if ok.sum() < 20:
            raise ValueError(f"need at least 20 calibration rows, got {int(ok.sum())}")
        predicted, true = predicted[ok], true[ok]
        n_bins = max(1, min(self.n_bins, int(ok.sum()) // 20))   # at least ~20 rows per bin
        bins, self.thresholds_ = binning(predicted, bins=n_bins)
        self.cps_ = ConformalPredictiveSystem().fit(true - predicted, bins=bins, seed=self.seed)
        self.n_calibration_ = int(ok.sum())
        return self

    def predict(self, predicted) -> tuple[np.ndarray, np.ndarray]:
        predicted = np.asarray(predicted, dtype=np.float64)
        bins = binning(predicted, bins=self.thresholds_)
        cap = np.inf if self.cap is None else float(self.cap)
        out = self.cps_.predict(predicted, bins=bins, lower_percentiles=[self.lower],
                                higher_percentiles=[self.upper], y_min=0.0, y_max=cap, seed=self.seed)
        out = np.atleast_2d(out)
        lo = np.clip(out[:, 0], 0.0, cap)
        hi = np.clip(out[:, 1], 0.0, cap)
        return np.minimum(lo, predicted.clip(0.0, cap)), np.maximum(hi, predicted.clip(0.0, cap))
