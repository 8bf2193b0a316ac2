"""Bucket means: per device, the mean of each sensor over fixed time buckets, for devices that
report faster than the detectors' unit of time.

The detectors learn per ``interval`` seconds (10 minutes on the platform). Fed one reading a
second or a minute, their residuals are strongly autocorrelated and a CUSUM sums the same
deviation many times over, so a fleet reporting fast raises false alarms. Averaging each
device's readings over buckets of ``interval`` seconds gives them what they were built for.

A bucket is handed on as soon as it is complete: when the device's reading is the last one its
cadence lets fall in the bucket (its time plus the device's typical gap reaches the bucket's
end), or when a reading of a later bucket arrives. A device that reports once per
``interval`` or slower therefore passes through unchanged and without delay, one reading per
bucket. The typical gap is an exponential average of the device's gaps (capped at
``interval``); a device's first reading counts as its bucket's last. An emitted row carries the
time of its bucket's newest reading and, per sensor, the mean of the values present (NaN if
none). State (float64/bool arrays indexed by device, updated in place):

- ``cur``: bucket number of the pending bucket; ``has``: a bucket is pending;
- ``sums``/``counts`` (devices x sensors): the pending bucket's sums and counts;
- ``newest``: time of the pending bucket's newest reading;
- ``last_t``: the device's newest reading time; ``gap``: its typical gap (NaN: not known yet).

``bucket_means`` (Numba) and ``bucket_means_reference`` (plain Python) agree.

>>> import numpy as np
>>> st = new_state(1, 1)
>>> t = np.arange(0.0, 1800.0, 60.0)                   # one reading a minute for 30 minutes
>>> X = (t // 600.0)[:, None] * 10 + 1                 # 1 in the first 10 minutes, then 11, 21
>>> dev, tt, M = bucket_means(np.zeros(len(t), np.int64), t, X, 600.0, 0.2, *st)
>>> tt.tolist(), M[:, 0].tolist()                      # the first reading passes as its own bucket
([0.0, 540.0, 1140.0, 1740.0], [1.0, 1.0, 11.0, 21.0])
"""

from __future__ import annotations

import numpy as np
from numba import njit

from detection.kernels.config import SERIAL


def new_state(n_devices: int, n_sensors: int) -> tuple:
    """Empty state for ``n_devices`` devices: (cur, has, sums, counts, newest, last_t, gap)."""
    return (np.full(n_devices, np.nan), np.zeros(n_devices, np.bool_),
            np.zeros((n_devices, n_sensors)), np.zeros((n_devices, n_sensors)),
            np.full(n_devices, np.nan), np.full(n_devices, np.nan), np.full(n_devices, np.nan))


@njit(**SERIAL)
def _emit(d, m, out_dev, out_t, out_X, has, sums, counts, newest):
    """Write device ``d``'s pending bucket as output row ``m`` and clear it."""
    out_dev[m] = d
    out_t[m] = newest[d]
    for j in range(sums.shape[1]):
        out_X[m, j] = sums[d, j] / counts[d, j] if counts[d, j] > 0 else np.nan
        sums[d, j] = 0.0
        counts[d, j] = 0.0
    has[d] = False


@njit(**SERIAL)
def bucket_means(dev, t_s, X, interval, alpha, cur, has, sums, counts, newest, last_t, gap):
    """Feed rows ``(dev[i], t_s[i], X[i])`` in order; return the completed buckets as
    ``(devices int64[m], times float64[m], means float64[m, sensors])`` in completion order."""
    n, s = X.shape
    out_dev = np.empty(2 * n, np.int64)
    out_t = np.empty(2 * n)
    out_X = np.empty((2 * n, s))
    m = 0
    for i in range(n):
        d = dev[i]
        t = t_s[i]
        b = np.floor(t / interval)
        if has[d] and b != cur[d]:                      # a later (or earlier) bucket: hand on
            _emit(d, m, out_dev, out_t, out_X, has, sums, counts, newest)
            m += 1
        if not np.isnan(last_t[d]) and t > last_t[d]:
            g = min(t - last_t[d], interval)
            gap[d] = g if np.isnan(gap[d]) else gap[d] + alpha * (g - gap[d])
        if np.isnan(last_t[d]) or t > last_t[d]:
            last_t[d] = t
        if not has[d] or t > newest[d]:
            newest[d] = t
        cur[d] = b
        has[d] = True
        for j in range(s):
            v = X[i, j]
            if not np.isnan(v):
                sums[d, j] += v
                counts[d, j] += 1.0
        g = interval if np.isnan(gap[d]) else gap[d]
        if t + g >= (b + 1.0) * interval * (1.0 - 1e-12):   # the bucket's last reading
            _emit(d, m, out_dev, out_t, out_X, has, sums, counts, newest)
            m += 1
    return out_dev[:m], out_t[:m], out_X[:m]


def bucket_means_reference(dev, t_s, X, interval, alpha, cur, has, sums, counts, newest, last_t, gap):
    """Plain Python reference of :func:`bucket_means` (same in-place contract)."""
    out: list[tuple] = []

    def emit(d):
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(counts[d] > 0, sums[d] / np.maximum(counts[d], 1.0), np.nan)
        out.append((d, newest[d], mean))
        sums[d] = 0.0
        counts[d] = 0.0
        has[d] = False

    for i in range(len(dev)):
        d, t = int(dev[i]), float(t_s[i])
        b = np.floor(t / interval)
        if has[d] and b != cur[d]:
            emit(d)
        if not np.isnan(last_t[d]) and t > last_t[d]:
            g = min(t - last_t[d], interval)
            gap[d] = g if np.isnan(gap[d]) else gap[d] + alpha * (g - gap[d])
        last_t[d] = t if np.isnan(last_t[d]) else max(last_t[d], t)
        newest[d] = t if not has[d] else max(newest[d], t)
        cur[d] = b
        has[d] = True
        present = ~np.isnan(X[i])
        sums[d][present] += X[i][present]
        counts[d][present] += 1.0
        g = interval if np.isnan(gap[d]) else gap[d]
        if t + g >= (b + 1.0) * interval * (1.0 - 1e-12):
            emit(d)
    s = X.shape[1]
    return (np.array([o[0] for o in out], dtype=np.int64), np.array([o[1] for o in out], dtype=np.float64),
            np.array([o[2] for o in out], dtype=np.float64).reshape(len(out), s))
