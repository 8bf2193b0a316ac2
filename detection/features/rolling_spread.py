"""Rolling spread: the population standard deviation of the finite readings in a trailing window.

Two passes per window (mean, then squared deviations), so a large offset does not cancel the
spread. One finite reading gives 0; none gives NaN.

>>> import numpy as np
>>> rolling_std(np.array([1.0, 3.0, np.nan, 3.0]), 2)
array([0., 1., 0., 0.])
"""

from __future__ import annotations

import numpy as np
from numba import njit

from detection.features._validate import as_2d_float, check_window
from detection.features._window import window_mean


@njit(cache=True, nogil=True)
def _rolling_std(x, window):
    n, k = x.shape
    out = np.empty((n, k))
    for c in range(k):
        for i in range(n):
            lo = max(0, i - window + 1)
            m, cnt = window_mean(x, c, lo, i)
            if cnt == 0:
                out[i, c] = np.nan
                continue
            ss = 0.0
            for j in range(lo, i + 1):
                v = x[j, c]
                if np.isfinite(v):
                    ss += (v - m) * (v - m)
            out[i, c] = np.sqrt(ss / cnt)
    return out


def rolling_std(x, window: int) -> np.ndarray:
    """Trailing-window population standard deviation of each column of ``x``."""
    a, was_1d = as_2d_float(x)
    out = _rolling_std(a, check_window(window))
    return out[:, 0] if was_1d else out
