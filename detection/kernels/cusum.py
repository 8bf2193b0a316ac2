"""Two-sided CUSUM over standardised deviations: catches small persistent shifts and drifts.

State per (device, sensor): ``st = [upper, lower]``. The input is a clipped z-score, so one
spike adds at most ``clip - k`` and a sustained shift of ``delta`` scale units grows the sum by
``delta - k`` per reading. The statistic is ``max(upper, lower)``.

>>> import numpy as np
>>> st = np.zeros(2)
>>> [round(update(st, z, 0.5), 1) for z in [0.2, -0.3, 1.5, 1.5, 1.5, -4.0]]
[0.0, 0.0, 1.0, 2.0, 3.0, 3.5]
"""

from __future__ import annotations

from numba import njit

from detection.kernels.config import SERIAL


@njit(inline="always", **SERIAL)
def update(st, zc: float, k: float) -> float:
    """Accumulate the clipped z-score ``zc`` with allowance ``k``; return the statistic."""
    st[0], st[1] = stepped(st[0], st[1], zc, k)
    return st[0] if st[0] > st[1] else st[1]


@njit(inline="always", **SERIAL)
def stepped(upper: float, lower: float, zc: float, k: float) -> tuple:
    """``(upper, lower)`` after accumulating ``zc`` (the scalar form)."""
    u = upper + zc - k
    lo = lower - zc - k
    return (u if u > 0.0 else 0.0), (lo if lo > 0.0 else 0.0)
