"""Plain NumPy references for the feature kernels: slow, one window at a time, written to be
obviously correct. The tests check that every compiled kernel agrees with its reference.
"""

from __future__ import annotations

import numpy as np


def _2d(x) -> tuple[np.ndarray, bool]:
    a = np.asarray(x, dtype=np.float64)
    return (a.reshape(-1, 1), True) if a.ndim == 1 else (a, False)


def _per_window(x, window: int, stat) -> np.ndarray:
    a, was_1d = _2d(x)
    out = np.full(a.shape, np.nan)
    for i in range(a.shape[0]):
        lo = max(0, i - window + 1)
        for c in range(a.shape[1]):
            t = np.arange(lo, i + 1, dtype=np.float64)
            v = a[lo : i + 1, c]
            ok = np.isfinite(v)
            out[i, c] = stat(t[ok], v[ok])
    return out[:, 0] if was_1d else out


def rolling_mean(x, window: int) -> np.ndarray:
    return _per_window(x, window, lambda t, v: v.mean() if v.size else np.nan)


def rolling_std(x, window: int) -> np.ndarray:
    return _per_window(x, window, lambda t, v: v.std() if v.size else np.nan)


def rolling_slope(x, window: int) -> np.ndarray:
    return _per_window(x, window, lambda t, v: np.polyfit(t, v, 1)[0] if v.size >= 2 else np.nan)


def _sequential_mean(v: np.ndarray) -> float:
    # Left-to-right sum (not NumPy's pairwise sum) so a reading that sits exactly on the mean
    # lands on the same side as in the compiled kernel.
    s = 0.0
    for x in v.tolist():
        s += x
    return s / len(v)


def _crossing_rate(t, v) -> float:
    if v.size < 2:
        return np.nan
    side = np.sign(v - _sequential_mean(v))
    side = side[side != 0]
    return np.count_nonzero(side[1:] != side[:-1]) / (v.size - 1)


def rolling_crossing_rate(x, window: int) -> np.ndarray:
    return _per_window(x, window, _crossing_rate)


def ewm_mean(x, alpha: float) -> np.ndarray:
    """Closed form: the k-th finite reading's mean is
    ``(1-a)^(k-1) x_1 + sum_{r=2..k} a (1-a)^(k-r) x_r``."""
    a, was_1d = _2d(x)
    out = np.full(a.shape, np.nan)
    for c in range(a.shape[1]):
        for i in range(a.shape[0]):
            v = a[: i + 1, c]
            v = v[np.isfinite(v)]
            if not v.size:
                continue
            k = v.size
            w = alpha * (1 - alpha) ** (k - 1 - np.arange(k))
            w[0] = (1 - alpha) ** (k - 1)
            out[i, c] = np.dot(w, v)
    return out[:, 0] if was_1d else out


def regime_stats(x, labels, n_regimes: int) -> tuple[np.ndarray, np.ndarray]:
    a, _ = _2d(x)
    labels = np.asarray(labels)
    means = np.full((n_regimes, a.shape[1]), np.nan)
    stds = np.full((n_regimes, a.shape[1]), np.nan)
    for r in range(n_regimes):
        for c in range(a.shape[1]):
            v = a[labels == r, c]
            v = v[np.isfinite(v)]
            if v.size:
                means[r, c], stds[r, c] = v.mean(), v.std()
    return means, stds


def regime_zscore(x, labels, means, stds) -> np.ndarray:
    a, was_1d = _2d(x)
    labels = np.asarray(labels)
    out = np.full(a.shape, np.nan)
    known = (labels >= 0) & (labels < means.shape[0])
    m = means[labels[known]]
    s = stds[labels[known]]
    scale = np.where(s > 1e-12 * np.abs(m), s, 1.0)
    out[known] = (a[known] - m) / scale
    return out[:, 0] if was_1d else out


def baseline_delta(x, n0: int) -> np.ndarray:
    a, was_1d = _2d(x)
    out = np.full(a.shape, np.nan)
    for i in range(a.shape[0]):
        for c in range(a.shape[1]):
            base = a[: min(i + 1, n0), c]
            base = base[np.isfinite(base)]
            if base.size and np.isfinite(a[i, c]):
                out[i, c] = a[i, c] - base.mean()
    return out[:, 0] if was_1d else out


def _rise(t, v) -> float:
    return float(v[-1] - v.min()) if v.size else np.nan


def rolling_rise(x, window: int) -> np.ndarray:
    return _per_window(x, window, _rise)
