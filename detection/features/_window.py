"""The trailing-window pass the rolling kernels share (compiled; no input checks)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def window_mean(x, c, lo, hi):
    """Mean and count of the finite readings ``x[lo..hi, c]`` (NaN mean when there are none)."""
    s = 0.0
    cnt = 0
    for j in range(lo, hi + 1):
        v = x[j, c]
        if np.isfinite(v):
            s += v
            cnt += 1
    return (s / cnt if cnt > 0 else np.nan), cnt
