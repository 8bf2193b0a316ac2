"""Deviation from the unit's own baseline: each reading minus the mean of the finite readings
among the first ``n0`` rows of the life (only those seen so far, so row ``i`` never looks
ahead). Units differ in their as-new level (manufacturing spread, sensor offset); the
deviation from their own start is the wear. NaN while no baseline reading exists, and where
the reading itself is missing.

>>> import numpy as np
>>> baseline_delta(np.array([10.0, np.nan, 12.0, 15.0, 20.0]), 3)
array([ 0., nan,  1.,  4.,  9.])
"""

from __future__ import annotations

import numpy as np
from numba import njit

from detection.features._validate import as_2d_float, check_window


@njit(cache=True, nogil=True)
def _baseline_delta(x, n0):
    n, k = x.shape
    out = np.empty((n, k))
    for c in range(k):
        s = 0.0
        cnt = 0
        for i in range(n):
            v = x[i, c]
            if i < n0 and np.isfinite(v):
                s += v
                cnt += 1
            if cnt > 0 and np.isfinite(v):
                out[i, c] = v - s / cnt
            else:
                out[i, c] = np.nan
    return out


def baseline_delta(x, n0: int) -> np.ndarray:
    """Each column of ``x`` minus the mean of its finite values among the first ``n0`` rows."""
    a, was_1d = as_2d_float(x)
    out = _baseline_delta(a, check_window(n0))
    return out[:, 0] if was_1d else out
