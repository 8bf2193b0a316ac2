"""Probability of failure within a horizon, and of which failure mode.

A multi-class gradient-boosting ensemble: one class means "no failure within the horizon", the
others are the failure modes that do happen within it. ``p_fail`` is one minus the probability
of the no-failure class; the most likely mode is the largest of the others. Binary targets
(``0/1`` or ``False/True``) work too.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(400, 3))
>>> y = np.where(X[:, 0] > 1, "bearing_wear", np.where(X[:, 1] > 1, "seal_leak", "none"))
>>> clf = HorizonClassifier(negative_class="none", n_members=2, max_iter=40, random_state=0).fit(X, y)
>>> p = clf.p_fail(np.array([[2.0, 0.0, 0.0], [-2.0, -2.0, 0.0]]))
>>> bool(p[0] > 0.5 > p[1])
True
>>> str(clf.predict_mode(np.array([[0.0, 2.5, 0.0]]))[0])
'seal_leak'
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from detection.prediction._ensemble import bootstrap_rows, check_params, member_params, member_seeds


class HorizonClassifier(ClassifierMixin, BaseEstimator):
    """Bagged gradient-boosting classifier of "fails within the horizon (and how)".

    Parameters
    ----------
    negative_class : label or None
        The label meaning "no failure within the horizon". ``None``: the smallest label
        (``0`` / ``False`` for binary targets).
    class_weight : "balanced", dict or None
        Failures are rare; "balanced" weighs classes inversely to their frequency (the
        probabilities then no longer match the base rate); a dict maps label -> weight.
    n_members, max_iter, learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization,
    max_features, row_fraction, random_state :
        As in :class:`detection.prediction.rul.RULRegressor`.
    """

    def __init__(
        self,
        negative_class=None,
        class_weight: str | dict | None = None,
        n_members: int = 3,
        max_iter: int = 200,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 40,
        l2_regularization: float = 1.0,
        max_features: float = 0.5,
        row_fraction: float = 0.8,
        random_state=None,
    ):
        self.negative_class = negative_class
        self.class_weight = class_weight
        self.n_members = n_members
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.max_features = max_features
        self.row_fraction = row_fraction
        self.random_state = random_state

    def fit(self, X, y):
        check_params(self)
        if not (self.class_weight is None or self.class_weight == "balanced" or isinstance(self.class_weight, dict)):
            raise ValueError(f"class_weight must be None, 'balanced' or a dict, got {self.class_weight!r}")
        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan")
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if self.negative_class is None:
            self.negative_index_ = 0
        else:
            hits = np.flatnonzero(self.classes_ == self.negative_class)
            if hits.size == 0:
                raise ValueError(f"negative_class {self.negative_class!r} is not among the labels")
            self.negative_index_ = int(hits[0])
        counts = np.bincount(codes, minlength=len(self.classes_)).astype(np.float64)
        weight = None
        if isinstance(self.class_weight, dict):
            weight = np.array([float(self.class_weight.get(c, 1.0)) for c in self.classes_])[codes]
        elif self.class_weight == "balanced":
            weight = (len(codes) / (len(counts) * counts))[codes]
        self.estimators_ = []
        self.n_iter_ = 0
        if len(self.classes_) == 1:
            return self  # constant: nothing to learn, predict_proba returns the one class
        for seed in member_seeds(self.random_state, int(self.n_members)):
            rows = bootstrap_rows(X.shape[0], seed, float(self.row_fraction))
            # every member must see every class, else its columns would not line up
            missing = np.setdiff1d(np.arange(len(self.classes_)), codes[rows])
            if missing.size:
                rows = np.union1d(rows, np.flatnonzero(np.isin(codes, missing)))
            member = HistGradientBoostingClassifier(**member_params(self, len(rows), seed))
            member.fit(X[rows], codes[rows], sample_weight=None if weight is None else weight[rows])
            self.estimators_.append(member)
        self.n_iter_ = max(m.n_iter_ for m in self.estimators_)
        return self

    def predict_proba(self, X):
        check_is_fitted(self, "estimators_")
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan")
        if not self.estimators_:
            return np.ones((X.shape[0], 1))
        return np.mean([m.predict_proba(X) for m in self.estimators_], axis=0)

    def predict(self, X):
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def p_fail(self, X) -> np.ndarray:
        """Probability of any failure within the horizon."""
        return 1.0 - self.predict_proba(X)[:, self.negative_index_]

    def predict_mode(self, X) -> np.ndarray:
        """The most likely failure class per row (ignoring the no-failure class); ``None``
        when no failure class was seen in training."""
        proba = self.predict_proba(X)
        if proba.shape[1] < 2:
            return np.array([None] * proba.shape[0], dtype=object)
        proba = proba.copy()
        proba[:, self.negative_index_] = -1.0
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
