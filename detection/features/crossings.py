"""Rolling mean-crossing rate: how often consecutive finite readings in a trailing window fall on
opposite sides of the window's mean, as a fraction of those consecutive pairs (0 = smooth trend
or constant, 1 = flips every reading). A reading exactly at the mean is on neither side (going -, 0, + is one crossing). Fewer
than two finite readings give NaN.

>>> import numpy as np
>>> rolling_crossing_rate(np.array([1.0, -1.0, 1.0, 1.0, 2.0, 3.0]), 3)
array([nan, 1. , 1. , 0.5, 0.5, 0.5])
"""

from __future__ import annotations

import numpy as np
from numba import njit

from detection.features._validate import as_2d_float, check_window
from detection.features._window import window_mean


@njit(cache=True, nogil=True)
def _rolling_crossing_rate(x, window):
    n, k = x.shape
    out = np.empty((n, k))
    for c in range(k):
        for i in range(n):
            lo = max(0, i - window + 1)
            m, cnt = window_mean(x, c, lo, i)
            if cnt < 2:
                out[i, c] = np.nan
                continue
            prev = 0.0
            have_prev = False
            flips = 0
            for j in range(lo, i + 1):
                v = x[j, c]
                if not np.isfinite(v):
                    continue
                d = v - m
                if d == 0.0:
                    continue
                if have_prev and ((prev > 0.0) != (d > 0.0)):
                    flips += 1
                prev = d
                have_prev = True
            out[i, c] = flips / (cnt - 1)
    return out


def rolling_crossing_rate(x, window: int) -> np.ndarray:
    """Trailing-window mean-crossing rate of each column of ``x``, in [0, 1]."""
    a, was_1d = as_2d_float(x)
    out = _rolling_crossing_rate(a, check_window(window))
    return out[:, 0] if was_1d else out
