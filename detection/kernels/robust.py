"""Streaming robust location and scale: a frugal median and median absolute deviation.

State per (device, sensor): ``st = [centre, mad]``. Each reading moves the centre a bounded
step toward it (stochastic approximation of the median, step proportional to the current
scale) and moves the MAD toward ``|x - centre|`` the same way, so one wild value shifts neither
by more than ``a`` scale units. The z-score uses ``1.4826 * mad`` (the normal-consistent scale).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> st = np.array([0.0, 1.0])
>>> for x in rng.normal(5.0, 2.0, 20000):
...     learn(st, x, 0.01, 1e-9, 0.0)
>>> round(st[0]), round(1.4826 * st[1])
(5, 2)
"""

from __future__ import annotations

import math

from numba import njit

from detection.kernels.config import SERIAL

MAD_TO_SD = 1.4826


@njit(inline="always", **SERIAL)
def scale_of(centre: float, mad: float, eps_abs: float, eps_rel: float) -> float:
    """The normal-consistent scale of a centre and MAD, with its floors."""
    return MAD_TO_SD * mad + eps_abs + eps_rel * abs(centre)


@njit(inline="always", **SERIAL)
def scale(st, eps_abs: float, eps_rel: float) -> float:
    return scale_of(st[0], st[1], eps_abs, eps_rel)


@njit(inline="always", **SERIAL)
def score(st, x: float, eps_abs: float, eps_rel: float) -> float:
    """Signed robust z-score of ``x``."""
    return (x - st[0]) / scale(st, eps_abs, eps_rel)


@njit(inline="always", **SERIAL)
def learn(st, x: float, a: float, eps_abs: float, eps_rel: float) -> None:
    """One bounded step of the centre and the MAD toward ``x``."""
    step_toward(st, x, a * scale(st, eps_abs, eps_rel))


@njit(inline="always", **SERIAL)
def step_toward(st, x: float, step: float) -> None:
    """Move the centre and the MAD by ``step`` toward ``x`` (the caller sets the step size,
    e.g. from a scale floored by the sensor's resolution)."""
    st[0], st[1] = stepped(st[0], st[1], x, step)


@njit(inline="always", **SERIAL)
def stepped(centre: float, mad: float, x: float, step: float) -> tuple:
    """``(centre, mad)`` after one step of ``step`` toward ``x`` (the scalar form)."""
    d = x - centre
    if d > 0.0:
        centre += step
    elif d < 0.0:
        centre -= step
    ad = abs(d)
    if ad > mad:
        mad += step
    elif ad < mad:
        mad -= step
        if mad < 0.0:
            mad = 0.0
    return centre, mad


@njit(inline="always", **SERIAL)
def init_from_moments(st, mean: float, var: float) -> None:
    """Seed the robust state from a mean and variance (during warm-up)."""
    st[0] = mean
    st[1] = math.sqrt(var) / MAD_TO_SD
