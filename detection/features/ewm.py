"""Exponentially weighted mean: ``y[i] = alpha * x[i] + (1 - alpha) * y[i-1]``, started at the
first finite reading; a missing reading (NaN, inf) leaves the mean where it was; NaN before the
first finite reading.

>>> import numpy as np
>>> ewm_mean(np.array([np.nan, 2.0, 4.0, np.nan, 0.0]), 0.5)
array([nan, 2. , 3. , 3. , 1.5])
"""

from __future__ import annotations

import numpy as np
from numba import njit

from detection.features._validate import as_2d_float, check_alpha


@njit(cache=True, nogil=True)
def _ewm_mean(x, alpha):
    n, k = x.shape
    out = np.empty((n, k))
    for c in range(k):
        y = np.nan
        started = False
        for i in range(n):
            v = x[i, c]
            if np.isfinite(v):
                if started:
                    y = alpha * v + (1.0 - alpha) * y
                else:
                    y = v
                    started = True
            out[i, c] = y
    return out


def ewm_mean(x, alpha: float) -> np.ndarray:
    """Exponentially weighted mean of each column of ``x`` with smoothing ``alpha`` in (0, 1]."""
    a, was_1d = as_2d_float(x)
    out = _ewm_mean(a, check_alpha(alpha))
    return out[:, 0] if was_1d else out
