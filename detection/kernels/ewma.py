"""Exponentially weighted mean and variance of one sensor, and the z-score against them.

State per (device, sensor): ``st = [mean, var]``. ``weight`` turns the number of nominal steps
since the previous reading (irregular timestamps, gaps) into the update weight, and keeps the
first readings an exact running mean so a cold start is not biased toward zero.

>>> import numpy as np
>>> st = np.zeros(2)
>>> for n, x in enumerate([10.0, 12.0, 11.0, 9.0, 13.0]):
...     learn(st, x, weight(0.1, 1.0, n))
>>> round(float(st[0]), 3), round(float(score(st[0], st[1], 30.0, 1e-9, 0.0)), 1)
(11.0, 13.4)
"""

from __future__ import annotations

import math

from numba import njit

from detection.kernels.config import SERIAL


@njit(inline="always", **SERIAL)
def decay(alpha: float, steps: float) -> float:
    """Weight of a new value after ``steps`` nominal intervals (``alpha`` for one step)."""
    if steps == 1.0:
        return alpha
    return 1.0 - (1.0 - alpha) ** steps


@njit(inline="always", **SERIAL)
def cold_start(a: float, n: int) -> float:
    """Never less than ``1 / (n + 1)``: the first values form an exact running mean."""
    first = 1.0 / (n + 1.0)
    return a if a > first else first


@njit(inline="always", **SERIAL)
def weight(alpha: float, steps: float, n: int) -> float:
    """Update weight after ``steps`` nominal intervals, for a state that has learned ``n`` values."""
    return cold_start(decay(alpha, steps), n)


@njit(inline="always", **SERIAL)
def score(mean: float, var: float, x: float, eps_abs: float, eps_rel: float) -> float:
    """Signed z-score of ``x``; the scale has an absolute and a relative floor (flat signals)."""
    return (x - mean) / (math.sqrt(var) + eps_abs + eps_rel * abs(mean))


@njit(inline="always", **SERIAL)
def moved(mean: float, var: float, x: float, a: float) -> tuple:
    """``(mean, var)`` moved toward ``x`` with weight ``a`` (West's weighted update); the scalar
    form the batch kernel uses so its state stays in registers, not in array views."""
    d = x - mean
    return mean + a * d, (1.0 - a) * (var + a * d * d)


@njit(inline="always", **SERIAL)
def learn(st, x: float, a: float) -> None:
    """Move ``st = [mean, var]`` toward ``x`` with weight ``a``."""
    st[0], st[1] = moved(st[0], st[1], x, a)
