"""What a sensor is, learned from its own readings: resolution, stuck runs, counters, constants.

Real telemetry is quantised (a thermocouple reporting 22.26, 22.27, ...), sensors stick at one
value, some channels are counters that only rise (operating hours, energy, cycles), and some
never move. The detector set learns this per (device, sensor) in ``sq[D, S, NQ]``:

- ``RES``: the resolution, the smallest non-zero step between consecutive readings seen so far;
  every scale is floored by ``res_floor x RES`` (default two steps: a quantised reading is
  uncertain by a step either way, and a sensor wandering by a step must not accumulate in the
  CUSUM) so a steady quantised sensor cannot produce a
  huge z from one step.
- ``SAME``: the learned share of readings that repeat the previous one exactly, ``RUN`` the
  current run of repeats. A run whose probability ``SAME ** RUN`` falls below ``stuck_p`` is a
  stuck sensor (a sensor fault, reported apart, neither scored nor learned), however often the
  sensor normally repeats itself.
- ``KIND``: decided at the end of the first warm-up: a counter (never falls, rises on at least
  half of the steps) is scored on its increments per nominal interval (a fall is a reset: that
  reading is skipped); otherwise raw.
- ``CONST``: the whole warm-up held one value; the sensor is not scored until it moves, then
  it is learned afresh.
- ``LO``, ``SPAN``: the warm-up range (levels of the context-novelty channel).
- ``PREV``, ``PREV_T``: the previous raw reading and its time.

>>> import numpy as np
>>> b = np.array([1.0, 2.0, 2.0, 3.0, 5.0, 8.0])
>>> bool(is_counter(b)), bool(is_counter(b[::-1])), bool(is_counter(np.full(6, 2.0)))
(True, False, False)
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from detection.kernels.config import SERIAL

RES, PREV, PREV_T, SAME, RUN, KIND, CONST, LO, SPAN = 0, 1, 2, 3, 4, 5, 6, 7, 8
NQ = 9
KIND_NEW, KIND_RAW, KIND_COUNTER = 0.0, 1.0, 2.0


def new_state(n_devices: int, n_sensors: int) -> np.ndarray:
    sq = np.zeros((n_devices, n_sensors, NQ))
    sq[:, :, PREV] = np.nan
    sq[:, :, PREV_T] = np.nan
    return sq


@njit(inline="always", **SERIAL)
def tolerance(x: float) -> float:
    """Differences at or below this are floating-point noise, not a step."""
    return 1e-12 * max(1.0, abs(x))


@njit(**SERIAL)
def is_counter(b) -> bool:
    """Never falls and rises on at least half of the steps."""
    n = b.shape[0]
    if n < 3:
        return False
    rises = 0
    for i in range(1, n):
        d = b[i] - b[i - 1]
        if d < -tolerance(b[i]):
            return False
        if d > tolerance(b[i]):
            rises += 1
    return 2 * rises >= n - 1


@njit(inline="always", **SERIAL)
def observe(sq, d: int, j: int, x: float, t: float, interval: float) -> tuple:
    """Learn the resolution and the run of repeats of sensor ``j`` of device ``d`` from raw
    reading ``x`` at time ``t``; return ``(value to score, repeated)``: ``x`` itself, or a
    counter's increment per nominal interval (NaN for a counter's first reading, a reset, or no
    elapsed time). Indexes ``sq`` element by element (no array views in the kernel's hot loop)."""
    prev = sq[d, j, PREV]
    same = False
    if not math.isnan(prev):
        dx = abs(x - prev)
        if dx <= tolerance(x):
            same = True
        else:
            res = sq[d, j, RES]
            if res == 0.0 or dx < res:
                sq[d, j, RES] = dx
    sq[d, j, RUN] = sq[d, j, RUN] + 1.0 if same else 0.0
    v = x
    if sq[d, j, KIND] == KIND_COUNTER:
        v = np.nan
        if not math.isnan(prev) and x >= prev:
            steps = 1.0
            prev_t = sq[d, j, PREV_T]
            if interval > 0.0 and not math.isnan(t) and not math.isnan(prev_t):
                steps = (t - prev_t) / interval
            if steps > 0.0:
                v = (x - prev) / steps
    sq[d, j, PREV] = x
    sq[d, j, PREV_T] = t
    return v, same


@njit(inline="always", **SERIAL)
def stuck(sq, d: int, j: int, stuck_p: float) -> bool:
    """The current run of repeats of sensor ``j`` of device ``d`` is too unlikely for it."""
    if stuck_p <= 0.0:
        return False
    run = sq[d, j, RUN]
    return run >= 2.0 and sq[d, j, SAME] ** run < stuck_p


@njit(inline="always", **SERIAL)
def floor(s: float, step_floor: float) -> float:
    """A scale ``s`` floored by ``step_floor`` (``res_floor`` x the sensor's resolution)."""
    return s if s >= step_floor else step_floor
