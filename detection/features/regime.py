"""Regime-normalised values: each reading as a z-score against the statistics of its operating
regime (e.g. the flight condition of a turbofan, or a pump's speed band), so a change of regime
does not look like degradation.

``regime_stats`` learns the per-regime mean and population standard deviation of the finite
readings; ``regime_zscore`` applies them. A regime with no spread (below 1e-12 of its mean: rounding noise) is centred but not scaled; a
label outside ``0 .. n_regimes - 1`` (unknown regime) or a regime never seen gives NaN.

>>> import numpy as np
>>> x = np.array([10.0, 12.0, 100.0, 104.0])
>>> labels = np.array([0, 0, 1, 1])
>>> means, stds = regime_stats(x, labels, 2)
>>> means.ravel(), stds.ravel()
(array([ 11., 102.]), array([1., 2.]))
>>> regime_zscore(np.array([12.0, 100.0]), np.array([0, 1]), means, stds)
array([ 1., -1.])
"""

from __future__ import annotations

import numpy as np
from numba import njit

from detection.features._validate import as_2d_float


# A spread below this fraction of the mean is rounding noise of a constant regime: centre only.
_REL_NOISE = 1e-12


@njit(cache=True, nogil=True)
def _regime_stats(x, labels, n_regimes):
    n, k = x.shape
    sums = np.zeros((n_regimes, k))
    counts = np.zeros((n_regimes, k))
    for i in range(n):
        r = labels[i]
        if r < 0 or r >= n_regimes:
            continue
        for c in range(k):
            v = x[i, c]
            if np.isfinite(v):
                sums[r, c] += v
                counts[r, c] += 1.0
    means = np.full((n_regimes, k), np.nan)
    for r in range(n_regimes):
        for c in range(k):
            if counts[r, c] > 0:
                means[r, c] = sums[r, c] / counts[r, c]
    ss = np.zeros((n_regimes, k))
    for i in range(n):
        r = labels[i]
        if r < 0 or r >= n_regimes:
            continue
        for c in range(k):
            v = x[i, c]
            if np.isfinite(v):
                d = v - means[r, c]
                ss[r, c] += d * d
    stds = np.full((n_regimes, k), np.nan)
    for r in range(n_regimes):
        for c in range(k):
            if counts[r, c] > 0:
                stds[r, c] = np.sqrt(ss[r, c] / counts[r, c])
    return means, stds


@njit(cache=True, nogil=True)
def _regime_zscore(x, labels, means, stds):
    n, k = x.shape
    n_regimes = means.shape[0]
    out = np.empty((n, k))
    for i in range(n):
        r = labels[i]
        for c in range(k):
            if r < 0 or r >= n_regimes:
                out[i, c] = np.nan
                continue
            m = means[r, c]
            s = stds[r, c]
            if s > _REL_NOISE * abs(m):
                out[i, c] = (x[i, c] - m) / s
            else:
                out[i, c] = x[i, c] - m
    return out


def _labels(labels, n: int) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.shape[0] != n:
        raise ValueError(f"need one regime label per row: {n} rows, labels of shape {lab.shape}")
    if lab.size and not np.issubdtype(lab.dtype, np.integer):
        raise TypeError(f"regime labels must be integers, got {lab.dtype}")
    return np.ascontiguousarray(lab, dtype=np.int64)


def regime_stats(x, labels, n_regimes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-regime mean and population std, each ``(n_regimes, n_columns)``."""
    a, _ = as_2d_float(x)
    if int(n_regimes) < 1:
        raise ValueError(f"n_regimes must be >= 1, got {n_regimes}")
    return _regime_stats(a, _labels(labels, a.shape[0]), int(n_regimes))


def regime_zscore(x, labels, means, stds) -> np.ndarray:
    """Z-score each reading against its regime's statistics (from ``regime_stats``)."""
    a, was_1d = as_2d_float(x)
    m = np.ascontiguousarray(np.asarray(means, dtype=np.float64).reshape(-1, a.shape[1]))
    s = np.ascontiguousarray(np.asarray(stds, dtype=np.float64).reshape(-1, a.shape[1]))
    if m.shape != s.shape:
        raise ValueError(f"means {m.shape} and stds {s.shape} differ in shape")
    out = _regime_zscore(a, _labels(labels, a.shape[0]), m, s)
    return out[:, 0] if was_1d else out
