"""Input checks shared by the public kernel wrappers (the compiled kernels trust their input)."""

from __future__ import annotations

import numbers

import numpy as np


def as_2d_float(x) -> tuple[np.ndarray, bool]:
    """Return ``x`` as a C-contiguous float64 ``(n, k)`` array and whether it was 1-D.

    >>> a, was_1d = as_2d_float([1, 2, 3])
    >>> a.shape, was_1d
    ((3, 1), True)
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        return np.ascontiguousarray(a.reshape(-1, 1)), True
    if a.ndim != 2:
        raise ValueError(f"expected a 1-D or 2-D array of readings, got {a.ndim}-D with shape {a.shape}")
    return np.ascontiguousarray(a), False


def check_window(window) -> int:
    """A window is a whole number of rows, at least 1."""
    if isinstance(window, bool) or not isinstance(window, numbers.Integral):
        raise TypeError(f"window must be an integer number of rows, got {window!r}")
    if window < 1:
        raise ValueError(f"window must be >= 1 row, got {window}")
    return int(window)


def check_alpha(alpha) -> float:
    """An EWM smoothing factor in (0, 1]."""
    a = float(alpha)
    if not (0.0 < a <= 1.0):
        raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
    return a
