"""Rolling slope: the least-squares trend of the finite readings in a trailing window, in units
per row (regress the reading on its row index). Fewer than two finite readings give NaN.

>>> import numpy as np
>>> rolling_slope(np.array([0.0, 2.0, np.nan, 6.0, 6.0]), 3)
array([nan,  2.,  2.,  2.,  0.])
"""

from __future__ import annotations

import numpy as np
from numba import njit

from detection.features._validate import as_2d_float, check_window


@njit(cache=True, nogil=True)
def _rolling_slope(x, window):
    n, k = x.shape
    out = np.empty((n, k))
    for c in range(k):
        for i in range(n):
            lo = max(0, i - window + 1)
            st = 0.0
            sv = 0.0
            cnt = 0
            for j in range(lo, i + 1):
                v = x[j, c]
                if np.isfinite(v):
                    st += j
                    sv += v
                    cnt += 1
            if cnt < 2:
                out[i, c] = np.nan
                continue
            mt = st / cnt
            mv = sv / cnt
            num = 0.0
            den = 0.0
            for j in range(lo, i + 1):
                v = x[j, c]
                if np.isfinite(v):
                    num += (j - mt) * (v - mv)
                    den += (j - mt) * (j - mt)
            out[i, c] = num / den
    return out


def rolling_slope(x, window: int) -> np.ndarray:
    """Trailing-window least-squares slope (per row) of each column of ``x``."""
    a, was_1d = as_2d_float(x)
    out = _rolling_slope(a, check_window(window))
    return out[:, 0] if was_1d else out
