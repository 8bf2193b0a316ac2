"""Streaming Mahalanobis distance of a device's standardised deviations (per product model).

Each sensor's robust z-score is already centred and scaled per device; what is left to learn is
how the sensors of one product model move together. ``update_comoment`` folds the clipped
z-vectors of accepted (unflagged) rows into an exponentially weighted co-moment matrix, shared
by all devices of the model; ``inverse_correlation`` turns it into a ridge-regularised inverse
correlation matrix, refreshed between batches. The kernel then scores a row by
``d2 = zc' R^-1 zc`` (a missing sensor sits at its centre, ``zc = 0``), with a chi-square tail on
the number of sensors present: a broken correlation (one sensor rising while its partner does
not) is flagged even when every sensor alone looks normal.

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> a = rng.normal(size=5000)
>>> Z = np.column_stack([a, a + 0.1 * rng.normal(size=5000)])
>>> C, w = update_comoment(np.zeros((2, 2)), 0.0, Z, 0.001)
>>> Rinv = inverse_correlation(C, 0.01)
>>> together, apart = np.array([2.0, 2.0]), np.array([2.0, -2.0])
>>> y = np.empty(2)
>>> bool(quad_form(Rinv, apart, y) > 50 * quad_form(Rinv, together, y))
True
"""

from __future__ import annotations

import numpy as np
from numba import njit

from detection.kernels.config import SERIAL


@njit(inline="always", **SERIAL)
def quad_form(Rinv, zc, y) -> float:
    """``zc' Rinv zc`` for one row (the Mahalanobis distance squared); ``Rinv`` is symmetric.

    ``y = Rinv zc`` is built row by row as ``y += zc[m] * Rinv[m]`` (contiguous, vectorisable
    without re-association) in the scratch vector ``y``; absent sensors (``zc = 0``) are skipped."""
    s = zc.shape[0]
    for j in range(s):
        y[j] = 0.0
    for m in range(s):
        zm = zc[m]
        if zm == 0.0:
            continue
        for j in range(s):
            y[j] += zm * Rinv[m, j]
    d2 = 0.0
    for j in range(s):
        d2 += zc[j] * y[j]
    return d2


def update_comoment(C: np.ndarray, w: float, Z: np.ndarray, alpha: float, n: int | None = None) -> tuple[np.ndarray, float]:
    """Fold the rows of ``Z`` (n, s) into the exponentially weighted co-moment ``C``.

    ``w`` is the total weight of the estimate (1 when fully warmed); ``n`` the number of rows
    that count (default all; rows of zeros beyond them add nothing). Returns ``(C, w)``.
    """
    n = Z.shape[0] if n is None else int(n)
    if n == 0:
        return C, w
    keep = (1.0 - alpha) ** n
    add = 1.0 - keep
    batch = (Z.T @ Z) / n
    return keep * C + add * batch, keep * w + add


def inverse_correlation(C: np.ndarray, ridge: float) -> np.ndarray:
    """Inverse of the correlation matrix of the co-moment ``C``, shrunk toward identity."""
    d = np.sqrt(np.clip(np.diag(C), 1e-12, None))
    R = C / np.outer(d, d)
    R = (1.0 - ridge) * R + ridge * np.eye(C.shape[0])
    return np.linalg.inv(R)


def top_eigenvalue(Rinv: np.ndarray) -> float:
    """Largest eigenvalue of the symmetric ``Rinv``: ``zc' Rinv zc <= top * |zc|^2`` bounds the
    distance, which lets the kernel skip the product for rows that cannot stand out."""
    return float(np.linalg.eigvalsh(0.5 * (Rinv + Rinv.T))[-1])
