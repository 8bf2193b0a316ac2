"""Rolling level: the mean of the finite readings in a trailing window.

Row ``i`` summarises rows ``max(0, i - window + 1) .. i``; NaN and inf are missing readings and
are skipped; a window without a finite reading gives NaN. Columns are independent sensors.

>>> import numpy as np
>>> rolling_mean(np.array([1.0, 2.0, np.nan, 4.0]), 2)
array([1. , 1.5, 2. , 4. ])
"""

from __future__ import annotations

import numpy as np
from numba import njit

from detection.features._validate import as_2d_float, check_window
from detection.features._window import window_mean


@njit(cache=True, nogil=True)
def _rolling_mean(x, window):
    n, k = x.shape
    out = np.empty((n, k))
    for c in range(k):
        for i in range(n):
            lo = max(0, i - window + 1)
            out[i, c] = window_mean(x, c, lo, i)[0]
    return out


def rolling_mean(x, window: int) -> np.ndarray:
    """Trailing-window mean of each column of ``x`` (1-D or ``(n, k)``), same shape as ``x``."""
    a, was_1d = as_2d_float(x)
    out = _rolling_mean(a, check_window(window))
    return out[:, 0] if was_1d else out
