"""Regime-normalised sensors for the platform: hourly means of the monitored sensors as
z-scores against their operating regime, the regime being a quantile band of a condition
sensor (load, speed: a sensor no failure mode moves). A pump at full load runs hotter and
shakes more; against its regime's normal, only wear stands out.

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
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detection.features.regime import regime_stats, regime_zscore


class RegimeNormalizer:
    """Learned: ``edges_`` (band edges of the condition sensor), ``means_``/``stds_``
    (per band and monitored sensor). ``augment`` appends the z-scores to the raw columns."""

    def __init__(self, condition: Sequence[int], n_regimes: int = 4):
        self.condition = list(condition)
        self.n_regimes = n_regimes

    def _monitored(self, k: int) -> list[int]:
        return [j for j in range(k) if j not in self.condition]

    def _labels(self, X: np.ndarray) -> np.ndarray:
        c = X[:, self.condition[0]]
        labels = np.searchsorted(self.edges_, c, side="right").astype(np.int64)
        labels[~np.isfinite(c)] = -1  # unknown regime -> NaN z-scores
        return labels

    def fit(self, X) -> RegimeNormalizer:
        X = np.asarray(X, dtype=np.float64)
        if not self.condition:
            raise ValueError("RegimeNormalizer needs at least one condition sensor")
        if not all(0 <= j < X.shape[1] for j in self.condition):
            raise ValueError(f"condition sensors {self.condition} out of range for {X.shape[1]} columns")
        c = X[:, self.condition[0]]
        c = c[np.isfinite(c)]
        if c.size == 0:
            raise ValueError("the condition sensor has no readings")
        qs = np.quantile(c, np.linspace(0, 1, self.n_regimes + 1)[1:-1])
        self.edges_ = np.unique(qs)
        self.n_features_in_ = X.shape[1]
        mon = self._monitored(X.shape[1])
        self.means_, self.stds_ = regime_stats(X[:, mon], self._labels(X), len(self.edges_) + 1)
        return self

    def augment(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} sensor columns, got shape {X.shape}")
        mon = self._monitored(X.shape[1])
        z = regime_zscore(X[:, mon], self._labels(X), self.means_, self.stds_)
        return np.c_[X, z]

    def names(self, sensors: Sequence[str]) -> list[str]:
        return list(sensors) + [f"{sensors[j]}@regime" for j in self._monitored(len(sensors))]
