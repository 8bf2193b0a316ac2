"""Regime-normalised sensors for the platform: sensor readings as z-scores against their
operating regime. The regime comes from the condition sensors (load, speed, altitude, throttle:
sensors no failure mode moves). A pump at full load runs hotter and shakes more; an engine at
cruise altitude reads differently from one at take-off; against its regime's normal, only wear
stands out.

Two ways to find the regimes, both learned from training history only:

- ``method="bands"`` (a continuous duty such as load): quantile bands of the first condition
  sensor, ``n_regimes`` of them (the other condition sensors are not normalised either).
- ``method="clusters"`` (several condition sensors, a product running a few discrete duty
  cycles, e.g. the six flight conditions of C-MAPSS FD002/FD004): k-means on the condition
  sensors, each scaled by its training spread. ``n_regimes="auto"`` picks the smallest ``k``
  (up to ``max_regimes``) whose clusters explain at least ``explained`` (99.9 %) of the condition
  sensors' variance; when none does, the conditions are one regime with noise (as C-MAPSS
  FD001), and ``k = 1``.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> load = rng.uniform(0, 1, 2000)
>>> X = np.c_[load, 40 + 30 * (load > 0.5) + rng.normal(0, 1, 2000)]
>>> norm = RegimeNormalizer(condition=[0], n_regimes=2).fit(X)
>>> Z = norm.augment(X)
>>> Z.shape, norm.names(["load", "temp"])
((2000, 3), ['load', 'temp', 'temp@regime'])
>>> bool(np.std(Z[:, 2]) < 1.1 < np.std(X[:, 1]))
True

Three duty points told apart by two condition sensors, their number learned:

>>> duty = rng.integers(0, 3, 3000)
>>> C = np.c_[np.array([0.0, 10.0, 25.0])[duty], np.array([0.2, 0.6, 0.8])[duty]] + rng.normal(0, 0.001, (3000, 2))
>>> X = np.c_[C, 500 + 40 * duty + rng.normal(0, 2, 3000)]
>>> norm = RegimeNormalizer([0, 1], n_regimes="auto", method="clusters").fit(X)
>>> norm.n_regimes_, round(float(np.std(norm.transform(X)[:, 0])), 2)
(3, 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

from detection.features.regime import regime_stats, regime_zscore

METHODS = ("bands", "clusters")


class RegimeNormalizer:
    """Per-regime z-scores of the monitored (non-condition) sensors.

    Parameters: ``condition`` (column indices of the condition sensors), ``n_regimes`` (int,
    or ``"auto"`` with ``method="clusters"``), ``method`` (``"bands"`` or ``"clusters"``),
    ``max_regimes`` and ``explained`` (the ``"auto"`` rule), ``random_state`` (k-means),
    ``max_fit_rows`` (the clusters are fitted on a sample of at most this many rows).
    Learned: ``n_regimes_``; ``edges_`` (bands) or ``centers_``/``scale_`` (clusters);
    ``means_``/``stds_`` (per regime and monitored sensor). ``transform`` gives the z-scores,
    ``augment`` appends them to the raw columns. A row with a missing condition value has an
    unknown regime: NaN z-scores.
    """

    def __init__(self, condition: Sequence[int], n_regimes: int | str = 4, method: str = "bands",
                 max_regimes: int = 10, explained: float = 0.999, random_state: int = 0,
                 max_fit_rows: int = 20000):
        self.condition = list(condition)
        self.n_regimes = n_regimes
        self.method = method
        self.max_regimes = max_regimes
        self.explained = explained
        self.random_state = random_state
        self.max_fit_rows = max_fit_rows

    def _monitored(self, k: int) -> list[int]:
        return [j for j in range(k) if j not in self.condition]

    def _labels(self, X: np.ndarray) -> np.ndarray:
        C = X[:, self.condition]
        ok = np.isfinite(C).all(axis=1)
        labels = np.full(len(X), -1, dtype=np.int64)  # unknown regime -> NaN z-scores
        if self.method == "bands":
            labels[ok] = np.searchsorted(self.edges_, C[ok, 0], side="right")
        elif ok.any():
            d = (((C[ok] - self.offset_) / self.scale_)[:, None, :] - self.centers_[None]) ** 2
            labels[ok] = np.argmin(d.sum(axis=2), axis=1)
        return labels

    def _check_params(self, X: np.ndarray) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if not self.condition:
            raise ValueError("RegimeNormalizer needs at least one condition sensor")
        if not all(0 <= j < X.shape[1] for j in self.condition):
            raise ValueError(f"condition sensors {self.condition} out of range for {X.shape[1]} columns")
        auto = self.n_regimes == "auto"
        if auto and self.method != "clusters":
            raise ValueError('n_regimes="auto" needs method="clusters"')
        if not auto and (not isinstance(self.n_regimes, (int, np.integer)) or self.n_regimes < 1):
            raise ValueError(f'n_regimes must be an int >= 1 or "auto", got {self.n_regimes!r}')
        if not 0 < self.explained < 1 or self.max_regimes < 1:
            raise ValueError("explained must be in (0, 1) and max_regimes >= 1")

    def _fit_clusters(self, C: np.ndarray) -> None:
        self.offset_ = C.mean(axis=0)
        spread = C.std(axis=0)
        self.scale_ = np.where(spread > 0, spread, 1.0)
        S = (C - self.offset_) / self.scale_
        if len(S) > self.max_fit_rows:  # regimes are few and dense: a sample finds them
            S = S[np.random.default_rng(self.random_state).choice(len(S), self.max_fit_rows, replace=False)]
        total = float(((S - S.mean(axis=0)) ** 2).sum())
        candidates = range(1, self.max_regimes + 1) if self.n_regimes == "auto" else [int(self.n_regimes)]
        self.explained_ = 0.0
        for k in candidates:
            k = min(k, len(np.unique(S, axis=0)))
            with threadpool_limits(limits=1, user_api="openmp"):  # spinning threads on a busy host
                km = KMeans(k, n_init=4, random_state=self.random_state).fit(S)
            self.centers_, self.explained_ = km.cluster_centers_, 1.0 - km.inertia_ / max(total, 1e-300)
            if self.n_regimes != "auto" or self.explained_ >= self.explained:
                return
        # no k explains the conditions: they are one regime with noise
        self.centers_, self.explained_ = S.mean(axis=0, keepdims=True), 0.0

    def fit(self, X) -> RegimeNormalizer:
        X = np.asarray(X, dtype=np.float64)
        self._check_params(X)
        C = X[:, self.condition]
        C = C[np.isfinite(C).all(axis=1)]
        if C.shape[0] == 0:
            raise ValueError("the condition sensors have no readings")
        if self.method == "bands":
            qs = np.quantile(C[:, 0], np.linspace(0, 1, self.n_regimes + 1)[1:-1])
            self.edges_ = np.unique(qs)
            self.n_regimes_ = len(self.edges_) + 1
        else:
            self._fit_clusters(C)
            self.n_regimes_ = len(self.centers_)
        self.n_features_in_ = X.shape[1]
        mon = self._monitored(X.shape[1])
        self.means_, self.stds_ = regime_stats(X[:, mon], self._labels(X), self.n_regimes_)
        return self

    def _checked(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} sensor columns, got shape {X.shape}")
        return X

    def regimes(self, X) -> np.ndarray:
        """The regime of every row (``-1``: unknown, a condition value is missing)."""
        return self._labels(self._checked(X))

    def transform(self, X) -> np.ndarray:
        """Z-scores of the monitored sensors against their regime: ``(n, n_monitored)``."""
        X = self._checked(X)
        return regime_zscore(X[:, self._monitored(X.shape[1])], self._labels(X), self.means_, self.stds_)

    def augment(self, X) -> np.ndarray:
        X = self._checked(X)
        return np.c_[X, self.transform(X)]

    def names(self, sensors: Sequence[str]) -> list[str]:
        return list(sensors) + [f"{sensors[j]}@regime" for j in self._monitored(len(sensors))]

    def describe(self, sensors: Sequence[str]) -> dict:
        """What was learned, for a model's metadata."""
        out = {"condition": [sensors[i] for i in self.condition], "method": self.method,
               "regimes": int(self.n_regimes_)}
        if self.method == "bands":
            out["edges"] = self.edges_.tolist()
        else:
            out["centers"] = (self.centers_ * self.scale_ + self.offset_).tolist()
            out["explained"] = float(self.explained_)
        return out
