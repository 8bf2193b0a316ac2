"""Tail probabilities that turn detector statistics into comparable p-values.

Every detector's evidence ends as a p-value (probability of a value this extreme under the
learned normal behaviour), so the fused score can combine them on one scale.

>>> round(normal_two_sided(1.959964), 4)
0.05
>>> round(chi2_upper(16.0, 8.0), 3)   # exact value 0.042
0.042
>>> cusum_tail(0.0, 0.5)
1.0
"""

from __future__ import annotations

import math

from numba import njit

from detection.kernels.config import SERIAL

_SQRT2 = math.sqrt(2.0)


@njit(inline="always", **SERIAL)
def normal_two_sided(z: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z."""
    return math.erfc(abs(z) / _SQRT2)


@njit(inline="always", **SERIAL)
def chi2_upper(d2: float, dof: float) -> float:
    """P(X >= d2) for X ~ chi-square(dof), by the Wilson-Hilferty cube-root approximation."""
    if d2 <= 0.0:
        return 1.0
    c = 2.0 / (9.0 * dof)
    w = ((d2 / dof) ** (1.0 / 3.0) - (1.0 - c)) / math.sqrt(c)
    return 0.5 * math.erfc(w / _SQRT2)


@njit(inline="always", **SERIAL)
def cusum_tail(s: float, k: float) -> float:
    """Two-sided CUSUM tail: P(max >= s) ~ exp(-2 k s) per side for N(-k, 1) increments."""
    p = 2.0 * math.exp(-2.0 * k * s)
    return p if p < 1.0 else 1.0


@njit(inline="always", **SERIAL)
def fuse(p_min: float, n_tests: float, scale: float) -> float:
    """Bonferroni-adjusted smallest p-value on a log scale, clipped to [0, 1]."""
    p = p_min * n_tests
    if p >= 1.0:
        return 0.0
    if p < 1e-300:
        p = 1e-300
    f = -math.log10(p) / scale
    return f if f < 1.0 else 1.0
