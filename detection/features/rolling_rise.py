"""Rolling rise: how far a sensor has climbed within a trailing window, the last finite reading
minus the lowest finite reading of the window. For a counter that only rises (reallocated or
pending sectors, error counts, starts) it is the count added within the window, whatever the
counter's level when the asset was first seen; a reset or a falling sensor gives 0 at the
bottom. No finite reading in the window gives NaN; one gives 0.

>>> import numpy as np
>>> rolling_rise(np.array([3.0, 3.0, 5.0, np.nan, 9.0, 9.0]), 3)
array([0., 0., 2., 2., 4., 0.])
"""

from __future__ import annotations

import numpy as np
from numba import njit

from detection.features._validate import as_2d_float, check_window


@njit(cache=True, nogil=True)
def _rolling_rise(x, window):
    n, k = x.shape
    out = np.empty((n, k))
    for c in range(k):
        for i in range(n):
            lo = max(0, i - window + 1)
            low = np.inf
            last = np.nan
            for j in range(lo, i + 1):
                v = x[j, c]
                if np.isfinite(v):
                    last = v
                    low = min(low, v)
            out[i, c] = last - low if np.isfinite(last) else np.nan
    return out


def rolling_rise(x, window: int) -> np.ndarray:
    """Trailing-window rise (last finite reading minus the window's lowest) of each column."""
    a, was_1d = as_2d_float(x)
    out = _rolling_rise(a, check_window(window))
    return out[:, 0] if was_1d else out
