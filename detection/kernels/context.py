"""Context novelty: has this transition between value levels ever been seen before?

A value is quantised into ``n_bins`` levels over a learned range ``[lo, lo + span]`` (levels
continue beyond the range, clamped ``pad`` levels out); a context is the pair (previous
level, current level). The detector remembers every context it has seen in an occupancy grid
per tiling; ``tiles`` tilings are offset by ``1 / tiles`` of a level, and a context counts as
novel only if it is novel in every tiling, so noise that straddles one level boundary does not
raise alarms. Memory is a fixed grid: ``tiles x G x G`` booleans, ``G = n_bins + 2 pad + 1``.

>>> import numpy as np
>>> seen = new_grid(4, 2, 8)
>>> prev = np.full(2, -1, dtype=np.int64)
>>> xs = np.array([0.1, 0.2, 0.3, 0.2, 0.1, 0.2, 0.9, 0.2])
>>> [bool(step(seen, prev, x, 0.0, 1.0, 4, 8)) for x in xs]
[False, True, True, False, False, False, True, True]
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from detection.kernels.config import SERIAL


def new_grid(n_bins: int, tiles: int, pad: int) -> np.ndarray:
    g = n_bins + 2 * pad + 1
    return np.zeros((tiles, g, g), dtype=np.bool_)


@njit(inline="always", **SERIAL)
def level(x: float, lo: float, span: float, n_bins: int, offset: float, pad: int) -> int:
    """Grid index of ``x`` in one tiling (0 .. n_bins + 2 pad)."""
    b = math.floor((x - lo) / span * n_bins + offset)
    if b < -pad:
        b = -pad
    elif b > n_bins + pad:
        b = n_bins + pad
    return int(b) + pad


@njit(**SERIAL)
def step(seen, prev, x: float, lo: float, span: float, n_bins: int, pad: int) -> bool:
    """Learn the context ending in ``x``; return True if it is novel in every tiling.

    ``prev[t]`` is the previous level per tiling (-1: none, e.g. after a missing value).
    A NaN ``x`` breaks the chain: the next value starts a new context.
    """
    tiles = seen.shape[0]
    if math.isnan(x):
        for t in range(tiles):
            prev[t] = -1
        return False
    novel = True
    for t in range(tiles):
        b = level(x, lo, span, n_bins, t / tiles, pad)
        p = prev[t]
        if p < 0:
            novel = False
        else:
            if seen[t, p, b]:
                novel = False
            seen[t, p, b] = True
        prev[t] = b
    return novel


def new_counters(window: int) -> tuple[np.ndarray, np.ndarray]:
    """Alarm state: ``counters = [cooldown, ring position, novel count in ring]`` and the ring
    of the last ``window`` novelty flags."""
    return np.zeros(3, dtype=np.int64), np.zeros(window, dtype=np.bool_)


@njit(**SERIAL)
def novelty_scores(values, seen, prev, lo: float, span: float, n_bins: int, pad: int, refractory: int,
                   min_count: int, counters, ring) -> np.ndarray:
    """Learn every value; score it ``count / window`` when at least ``min_count`` of the last
    ``window = len(ring)`` contexts were novel (an event, not boundary noise), else 0. After an
    alarm, ``refractory`` values score 0 (one event, one alarm). ``counters``/``ring`` carry the
    alarm state between calls (see ``new_counters``)."""
    out = np.zeros(values.shape[0])
    window = ring.shape[0]
    for i in range(values.shape[0]):
        nov = step(seen, prev, values[i], lo, span, n_bins, pad)
        pos = counters[1]
        if ring[pos]:
            counters[2] -= 1
        ring[pos] = nov
        if nov:
            counters[2] += 1
        counters[1] = (pos + 1) % window
        if counters[0] > 0:
            counters[0] -= 1
        elif counters[2] >= min_count:
            out[i] = counters[2] / window
            counters[0] = refractory
    return out
