"""Operating-condition normalisation: remove what the operating regime explains.

Load, speed and ambient temperature (the condition sensors: those no failure mode moves) drive
the other sensors through the daily and weekly cycle, and thermal sensors follow them with a
lag. A ridge regression per product model on the condition sensors, whether each is on
(running or stopped) and their lagged averages (:mod:`detection.kernels.lagged`), fitted on
history, predicts each monitored sensor; the detectors then watch the residual (value minus
prediction), where a degradation stands out instead of hiding in the load cycle. Follows
scikit-learn's estimator conventions.

The design is linear in the conditions by default (``squares=False``). The normaliser is fitted
on a few days of history, and the seasons then take the conditions beyond anything in it (the
ambient temperature of late autumn). Squared terms fitted on a narrow range trade slope for
curvature among collinear columns (ambient, its square, its lagged averages), and the curvature
extrapolated beyond the range put the thermal sensors' residuals 2-4 sd off on a whole fleet,
which the detectors read as a fault; a linear fit extrapolates with its average slope over the
fitted range (measured in benchmarks/RESULTS.md, drift section).

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> load = rng.uniform(0.2, 1.0, 500)
>>> X = np.column_stack([load, 10 + 30 * load + rng.normal(0, 0.1, 500)])
>>> norm = ConditionNormalizer(condition=[0]).fit(X)
>>> r = norm.transform(X)
>>> bool(np.nanstd(r[:, 1]) < 0.2), bool(np.all(r[:, 0] == X[:, 0]))
(True, True)
"""

from __future__ import annotations

import warnings

import numpy as np


class ConditionNormalizer:
    """Residuals of the monitored sensors given the condition sensors.

    Parameters: ``condition`` (indices of condition sensors), ``ridge`` (L2 penalty, relative
    to the design's scale), ``squares`` (also regress on the squared conditions: off by
    default, see the module docstring). ``lagged`` (optional float[n, k], the same columns at fit and
    transform): lagged condition features. Learned: ``coef_`` float64[n_features, n_sensors],
    ``on_`` (per condition sensor, the level above which it counts as on), ``n_samples_``. Condition sensors pass through unchanged; a row with a missing condition
    value gets NaN residuals for the others (the detectors treat NaN as missing).
    """

    def __init__(self, condition: list[int], ridge: float = 1e-6, squares: bool = False):
        self.condition = list(condition)
        self.ridge = ridge
        self.squares = squares

    def n_features(self, n_lagged: int) -> int:
        """Columns of the design (rows of ``coef_``)."""
        return 1 + (3 if self.squares else 2) * len(self.condition) + n_lagged

    @classmethod
    def restore(cls, condition: list[int], coef: np.ndarray, on: np.ndarray, n_lagged: int) -> "ConditionNormalizer":
        """A fitted normaliser from its learned arrays (a checkpoint); a checkpoint written before
        the linear design keeps its squared terms."""
        norm = cls(condition)
        norm.squares = coef.shape[0] == cls(condition, squares=True).n_features(n_lagged) and bool(condition)
        norm.coef_, norm.on_, norm.n_lagged_ = coef, on, n_lagged
        norm.n_sensors_ = coef.shape[1]
        norm.n_samples_ = 0
        return norm

    def _design(self, X: np.ndarray, lagged: np.ndarray | None) -> np.ndarray:
        C = X[:, self.condition]
        with np.errstate(invalid="ignore"):
            on = np.where(np.isnan(C), np.nan, (np.abs(C) > self.on_).astype(np.float64))
        parts = [np.ones(len(X)), C, C ** 2, on] if self.squares else [np.ones(len(X)), C, on]
        if lagged is not None:
            if lagged.shape != (len(X), self.n_lagged_):
                raise ValueError(f"lagged must have shape ({len(X)}, {self.n_lagged_}), got {lagged.shape}")
            parts.append(lagged)
        elif self.n_lagged_:
            raise ValueError("this normaliser was fitted with lagged features; pass them")
        return np.column_stack(parts)

    def fit(self, X: np.ndarray, lagged: np.ndarray | None = None) -> "ConditionNormalizer":
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D, got shape {X.shape}")
        self.n_sensors_ = X.shape[1]
        self.n_lagged_ = 0 if lagged is None else lagged.shape[1]
        with warnings.catch_warnings():        # a condition sensor with no reading yet: NaN, then 0 below
            warnings.simplefilter("ignore", RuntimeWarning)
            top = np.nanmax(np.abs(X[:, self.condition]), axis=0) if self.condition and len(X) else np.zeros(0)
        self.on_ = np.nan_to_num(1e-3 * top)
        self.coef_ = np.zeros((self.n_features(self.n_lagged_), self.n_sensors_))
        self.n_samples_ = 0
        if not self.condition:
            return self
        D = self._design(X, lagged)
        ok_rows = np.isfinite(D).all(axis=1)
        for j in range(self.n_sensors_):
            if j in self.condition:
                continue
            ok = ok_rows & np.isfinite(X[:, j])
            if ok.sum() < D.shape[1] * 10:
                continue      # too little history: no correction (the detectors' own baseline only)
            A, y = D[ok], X[ok, j]
            scale = np.maximum(np.abs(A).mean(axis=0), 1e-9)
            As = A / scale
            G = As.T @ As + self.ridge * len(As) * np.eye(As.shape[1])
            G[0, 0] -= self.ridge * len(As)          # the intercept is not penalised
            beta = np.linalg.solve(G, As.T @ y) / scale
            beta[0] = 0.0                             # keep the level: detectors learn it per device
            self.coef_[:, j] = beta
            self.n_samples_ = max(self.n_samples_, int(ok.sum()))
        return self

    def transform(self, X: np.ndarray, lagged: np.ndarray | None = None) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.shape[1] != self.n_sensors_:
            raise ValueError(f"expected {self.n_sensors_} sensors, got {X.shape[1]}")
        if not self.condition:
            return X.copy()
        return X - self._design(X, lagged) @ self.coef_
