"""Context novelty: has this transition between value levels ever been seen before?

A value is quantised into ``n_bins`` levels over a learned range ``[lo, lo + span]`` (levels
continue beyond the range, clamped ``pad`` levels out); a context is the pair (previous
level, current level). The detector remembers every context it has seen in an occupancy grid
per tiling; ``tiles`` tilings are offset by ``1 / tiles`` of a level, and a context counts as
novel only if it is novel in every tiling, so noise that straddles one level boundary does not
raise alarms. Memory is a fixed grid of ``tiles x G x G`` bits, ``G = n_bins + 2 pad + 1``,
packed into ``uint64`` words (``tiles x ceil(G^2 / 64)``): the streaming detector set keeps one
per (device, sensor).

A second, optional channel remembers (phase slot, level) pairs, the phase being e.g. the hour
of the day: a level never seen at this time of day is novel even if it is routine at another
(a missing daily peak, a night-time value during the day). Its levels are the same, clamped
``phase_pad`` levels beyond the range; its grid is ``tiles x slots x (n_bins + 2 phase_pad + 1)``
bits, packed the same way.

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


def words(n_bits: int) -> int:
    """``uint64`` words holding ``n_bits`` bits (at least one, so arrays are never empty)."""
    return max(1, (int(n_bits) + 63) // 64)


def new_grid(n_bins: int, tiles: int, pad: int) -> np.ndarray:
    g = n_bins + 2 * pad + 1
    return np.zeros((words(g * g), tiles), dtype=np.uint64)


@njit(inline="always", **SERIAL)
def mark(grid, t: int, bit: int) -> bool:
    """Was ``bit`` of tiling ``t`` set? It is set afterwards (``grid[word, tiling]``)."""
    w = bit >> 6
    m = np.uint64(1) << np.uint64(bit & 63)
    old = grid[w, t]
    grid[w, t] = old | m
    return (old & m) != np.uint64(0)


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
    tiles = seen.shape[1]
    if math.isnan(x):
        for t in range(tiles):
            prev[t] = -1
        return False
    g = n_bins + 2 * pad + 1
    novel = True
    for t in range(tiles):
        b = level(x, lo, span, n_bins, t / tiles, pad)
        p = int(prev[t])
        if p < 0:
            novel = False
        elif mark(seen, t, p * g + b):
            novel = False
        prev[t] = b
    return novel


def new_phase_grid(n_bins: int, tiles: int, phase_pad: int, slots: int) -> np.ndarray:
    """(phase slot, level) occupancy bits per tiling; ``slots = 0``: no phase channel (one unused word)."""
    return np.zeros((words(slots * (n_bins + 2 * phase_pad + 1)), tiles), dtype=np.uint64)


@njit(**SERIAL)
def phase_step(pseen, phase: int, x: float, lo: float, span: float, n_bins: int, phase_pad: int) -> bool:
    """Learn the pair (``phase``, level of ``x``); True if it is novel in every tiling."""
    tiles = pseen.shape[1]
    g = n_bins + 2 * phase_pad + 1
    novel = True
    for t in range(tiles):
        b = level(x, lo, span, n_bins, t / tiles, phase_pad)
        if mark(pseen, t, phase * g + b):
            novel = False
    return novel


# counters: [cooldown, ring position, contexts scored, novel contexts, phase pairs scored, novel
# pairs, sum of the ring]
COOL, POS, N_SEEN, N_NOVEL, N_PSEEN, N_PNOVEL, TOTAL = 0, 1, 2, 3, 4, 5, 6
N_COUNTERS = 7


def new_counters(window: int) -> tuple[np.ndarray, np.ndarray]:
    """Alarm state: ``counters`` (cooldown, ring position, contexts scored, novel contexts, phase
    pairs scored, novel phase pairs, sum of the ring) and the ring of the last ``window``
    surprise weights."""
    return np.zeros(N_COUNTERS), np.zeros(window)


@njit(inline="always", **SERIAL)
def surprise(counters, k_seen: int, k_novel: int, novel: bool, prior_n: float) -> float:
    """Count one scored context; a novel one weighs ``-log10`` of the running novelty share."""
    counters[k_seen] += 1.0
    if not novel:
        return 0.0
    counters[k_novel] += 1.0
    rate = (counters[k_novel] + 1.0) / (counters[k_seen] + prior_n)
    w = -math.log10(rate) if rate < 1.0 else 0.0
    return w + 1e-3                           # a novelty always counts a little


@njit(inline="always", **SERIAL)
def novelty_one(x: float, phase: int, slots: int, seen, prev, pseen, lo: float, span: float, n_bins: int, pad: int,
                phase_pad: int, refractory: float, min_surprise: float, prior_n: float, phase_weight: float,
                counters, ring) -> float:
    """Learn one value (NaN: breaks the chain) and return its score (see ``novelty_scores``).

    The ring's sum is kept in ``counters[TOTAL]`` and recomputed (in ring order) only when the
    ring changes, so a quiet stream costs no summing."""
    nov = step(seen, prev, x, lo, span, n_bins, pad)
    w = 0.0
    if not math.isnan(x):
        w = surprise(counters, N_SEEN, N_NOVEL, nov, prior_n)
        if 0 <= phase < slots:
            pnov = phase_step(pseen, phase, x, lo, span, n_bins, phase_pad)
            w += phase_weight * surprise(counters, N_PSEEN, N_PNOVEL, pnov, prior_n)
    pos = int(counters[POS])
    window = ring.shape[0]
    if w != 0.0 or ring[pos] != 0.0:
        ring[pos] = w
        total = 0.0
        for k in range(window):
            total += ring[k]
        counters[TOTAL] = total
    counters[POS] = (pos + 1) % window
    total = counters[TOTAL]
    if counters[COOL] > 0:
        counters[COOL] -= 1.0
    elif total > 0.0 and total >= min_surprise:
        counters[COOL] = refractory
        return total / (total + min_surprise)
    return 0.0


@njit(**SERIAL)
def novelty_scores(values, phases, slots: int, seen, prev, pseen, lo: float, span: float, n_bins: int, pad: int,
                   phase_pad: int, refractory: int, min_surprise: float, prior_n: float, phase_weight: float,
                   counters, ring) -> np.ndarray:
    """Learn every value and score it by the surprise of recent novel contexts.

    A novel context weighs ``-log10(rate)``, ``rate = (novel + 1) / (scored + prior_n)`` the
    running share of novel contexts: novelty is news in a series that rarely produces it and
    routine in one that often does. A novel (phase, level) pair (``0 <= phases[i] < slots``,
    ``pseen`` from ``new_phase_grid``; other phases: no pair) adds ``phase_weight`` times its own
    surprise, from its own running share. The weights of the last ``window = len(ring)`` values
    are summed; when the sum ``s`` reaches ``min_surprise`` (decades) the value scores
    ``s / (s + min_surprise)``, else 0. After an alarm, ``refractory`` values score 0.
    ``counters``/``ring`` carry the state between calls (see ``new_counters``).
    """
    out = np.zeros(values.shape[0])
    for i in range(values.shape[0]):
        out[i] = novelty_one(values[i], phases[i], slots, seen, prev, pseen, lo, span, n_bins, pad, phase_pad,
                             float(refractory), min_surprise, prior_n, phase_weight, counters, ring)
    return out
