"""Lagged operating conditions: per device, exponential moving averages of each condition
sensor (load, speed, ambient) at a few time constants, over irregular timestamps.

Thermal sensors follow load with a first-order lag, so "what the regime explains" at time t
depends on the recent load, not only the current one: an EMA of the load with the sensor's
time constant is exactly its lagged steady state. The condition normaliser regresses on
these. A missing condition value holds the average; a device's first reading starts it.

``lagged_ema`` (Numba) and ``lagged_ema_reference`` (plain NumPy/Python) agree.

>>> import numpy as np
>>> C = np.array([[0.0], [1.0], [1.0], [1.0]]); t = np.array([0.0, 60.0, 120.0, 180.0])
>>> ema = np.zeros((1, 1, 1)); last = np.full(1, np.nan)
>>> F = lagged_ema(np.zeros(4, np.int64), t, C, np.array([60.0]), ema, last)
>>> np.round(F[:, 0], 3).tolist()       # a step in load, followed with a 60 s time constant
[0.0, 0.632, 0.865, 0.95]
"""

from __future__ import annotations

import numpy as np
from numba import njit

from detection.kernels.config import SERIAL


@njit(**SERIAL)
def lagged_ema(dev, t_s, C, taus, ema, last_t):
    """Update ``ema`` (float64[devices, conditions, taus]) and ``last_t`` in place over the rows
    in order; return float64[n, conditions * taus] (condition-major)."""
    n, nc = C.shape
    nt = taus.shape[0]
    out = np.empty((n, nc * nt))
    for i in range(n):
        d = dev[i]
        first = np.isnan(last_t[d])
        dt = 0.0 if first else max(t_s[i] - last_t[d], 0.0)
        if first or t_s[i] > last_t[d]:
            last_t[d] = t_s[i]
        for c in range(nc):
            v = C[i, c]
            for k in range(nt):
                if not np.isnan(v):
                    if first or np.isnan(ema[d, c, k]):
                        ema[d, c, k] = v
                    else:
                        a = 1.0 - np.exp(-dt / taus[k])
                        ema[d, c, k] += a * (v - ema[d, c, k])
                out[i, c * nt + k] = ema[d, c, k]
    return out


def lagged_ema_reference(dev, t_s, C, taus, ema, last_t):
    """Plain NumPy reference of :func:`lagged_ema` (same in-place contract)."""
    n, nc = C.shape
    out = np.empty((n, nc * len(taus)))
    for i in range(n):
        d = dev[i]
        first = bool(np.isnan(last_t[d]))
        dt = 0.0 if first else max(t_s[i] - last_t[d], 0.0)
        if first or t_s[i] > last_t[d]:
            last_t[d] = t_s[i]
        a = 1.0 - np.exp(-dt / np.asarray(taus))
        v = C[i][:, None]
        cur = ema[d]
        fresh = first | np.isnan(cur)
        upd = np.where(fresh, v, cur + a[None, :] * (v - cur))
        ema[d] = np.where(np.isnan(v), cur, upd)
        out[i] = ema[d].reshape(-1)
    return out
