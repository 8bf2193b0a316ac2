"""Failure-mode evidence: per (device, failure mode), the time-weighted share of recent
readings whose anomaly is attributed to that mode.

Each flagged reading is attributed to the mode whose signature best matches its deviations
(a matched filter: ``score_m = sum_s w[m, s] * z_s`` with ``w`` the mode's signed signature of
unit norm, or ``sum_s w[m, s] * |z_s|`` for a mode whose direction is unknown); the evidence is a continuous-time EWMA of that
indicator with time constant ``tau_s``, so irregular sampling and gaps are handled and a
transient spike fades while a developing fault accumulates.

``evidence_update`` (Numba) and ``evidence_update_reference`` (plain NumPy/Python) agree.

>>> import numpy as np
>>> w, absolute = mode_weights(np.array([[1.0, 0.0], [0.0, -1.0]]), np.array([False, False]))
>>> rate = np.zeros((1, 2)); last = np.full(1, np.nan)
>>> z = np.array([[5.0, 0.1]] * 10); flag = np.ones(10, bool)
>>> out = evidence_update(np.zeros(10, np.int64), np.arange(10.0) * 60, z, flag, w, absolute, rate, last, 600.0, 1.0)
>>> bool(out[-1, 0] > 0.5 and out[-1, 1] == 0.0)
True
>>> z[:, 0] = -5.0                       # the same sensor moving the other way is not that mode
>>> rate = np.zeros((1, 2)); last = np.full(1, np.nan)
>>> out = evidence_update(np.zeros(10, np.int64), np.arange(10.0) * 60, z, flag, w, absolute, rate, last, 600.0, 1.0)
>>> float(out[-1, 0])
0.0
"""

from __future__ import annotations

import numpy as np
from numba import njit

from detection.kernels.config import SERIAL


def mode_weights(signature: np.ndarray, absolute: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Matched-filter weights of unit norm per mode from float[modes, sensors] signatures
    (signed; for ``absolute`` modes only the magnitudes count). Returns (w, absolute)."""
    sig = np.asarray(signature, dtype=np.float64)
    absolute = np.asarray(absolute, dtype=np.bool_)
    sig = np.where(absolute[:, None], np.abs(sig), sig)
    n = np.sqrt((sig ** 2).sum(axis=1, keepdims=True))
    return np.divide(sig, n, out=np.zeros_like(sig), where=n > 0), absolute


def mode_scores(z: np.ndarray, w: np.ndarray, absolute: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's matched-filter score per mode (float[n, modes], missing sensors count 0) and
    the mode an anomaly on that row would be attributed to (int[n]: the highest score, the last
    mode on a tie; -1 without modes). :func:`evidence_update` attributes a flagged row to that
    mode when its score is at least ``min_score``."""
    z0 = np.where(np.isnan(z), 0.0, np.atleast_2d(z))
    scores = np.where(absolute[None, :], np.abs(z0) @ w.T, z0 @ w.T)
    if not w.shape[0]:
        return scores, np.full(len(z0), -1, dtype=np.int64)
    best = w.shape[0] - 1 - np.argmax(scores[:, ::-1], axis=1)
    return scores, best


@njit(**SERIAL)
def evidence_update(dev, t_s, z, flag, w, absolute, rate, last_t, tau_s, min_score):
    """Update ``rate`` (float64[devices, modes]) and ``last_t`` in place over the rows in
    order; return float64[n, modes]: each row's device evidence after that row."""
    n, s = z.shape
    n_modes = w.shape[0]
    out = np.empty((n, n_modes))
    for i in range(n):
        d = dev[i]
        decay = 1.0
        if not np.isnan(last_t[d]):
            dt = t_s[i] - last_t[d]
            if dt > 0.0:
                decay = np.exp(-dt / tau_s)
            else:
                decay = 1.0
            last_t[d] = max(last_t[d], t_s[i])
        else:
            last_t[d] = t_s[i]
        best = -1
        best_score = min_score
        if flag[i]:
            for m in range(n_modes):
                sc = 0.0
                for j in range(s):
                    v = z[i, j]
                    if w[m, j] != 0.0 and not np.isnan(v):
                        sc += w[m, j] * (abs(v) if absolute[m] else v)
                if sc >= best_score:
                    best_score = sc
                    best = m
        gain = 1.0 - decay if decay < 1.0 else 0.0
        for m in range(n_modes):
            hit = 1.0 if m == best else 0.0
            if decay < 1.0:
                rate[d, m] = rate[d, m] * decay + gain * hit
            out[i, m] = rate[d, m]
    return out


def evidence_update_reference(dev, t_s, z, flag, w, absolute, rate, last_t, tau_s, min_score):
    """Plain NumPy reference of :func:`evidence_update` (same in-place contract)."""
    n = z.shape[0]
    out = np.empty((n, w.shape[0]))
    scores, best = mode_scores(z, w, absolute)
    for i in range(n):
        d = dev[i]
        if np.isnan(last_t[d]):
            decay, last_t[d] = 1.0, t_s[i]
        else:
            dt = t_s[i] - last_t[d]
            decay = float(np.exp(-dt / tau_s)) if dt > 0 else 1.0
            last_t[d] = max(last_t[d], t_s[i])
        hit = np.zeros(w.shape[0])
        if flag[i] and w.shape[0] and scores[i, best[i]] >= min_score:
            hit[best[i]] = 1.0
        if decay < 1.0:
            rate[d] = rate[d] * decay + (1.0 - decay) * hit
        out[i] = rate[d]
    return out
