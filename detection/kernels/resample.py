"""Bucket summaries: per device, one row per fixed time bucket for the detectors, with what
happened between the readings summarised rather than dropped.

The detectors learn per ``interval`` seconds (10 minutes on the platform) and are tuned on one
reading per interval. Fed one reading a minute, their residuals are autocorrelated and a CUSUM
sums the same deviation many times over; fed 10-minute *means*, the noise they were tuned on
shrinks and every imperfection of the regime model stands out (measured on the lead-time
benchmark at one reading a minute, 250 assets x 30 days: means gave precision 0.58, one reading
per 10 minutes 0.94, on the same fleet). So each bucket hands on, per sensor, its newest value
present (NaN if none) as the *level* the detectors score, and a summary of every reading in it:

- per sensor, its *local level* (an exponentially weighted mean of its readings with weight
  ``LOCAL_ALPHA``, each reading's pull clipped at ``K_EXC`` scales, so the level follows slow
  drift and steps within a few readings but one spike moves it little), the spread of its
  innovations (readings minus the local level before them; weight ``max(1 / (n + 1),
  RAW_ALPHA)``, exceedances not learned), its resolution (the smallest non-zero step between
  consecutive readings, as ``detection.kernels.sensor`` learns it) and its own exceedance rate
  (share of readings more than ``K_EXC`` scales from the local level, prior the normal one).
  The test is on innovations, not on the distance from a long-run band: slow wander of the
  residual (a season, a thermal lag the regime model misses) is the level detectors' business
  and, tested reading by reading, would count the same deviation ten times a bucket; a spike
  stands out from the readings either side of it. The scale is floored by ``res_floor``
  resolution steps (the detector set's ``FleetConfig.res_floor``), so a fast, steady, quantised
  sensor (a pressure holding 3.15 in 0.01 steps, one reading a second) cannot count a one-step
  flicker as an exceedance;
- per bucket: the number of readings tested, the number of exceedances and the most extreme
  reading's signed z;
- handed on as ``ex``: signed decades of the smaller of two p-values, Bonferroni-combined:
  the extreme (``n x`` its two-sided normal tail, a maximum of ``n`` readings) and the count
  (Poisson tail of the exceedances at the sensor's own rate times ``n``). NaN when the bucket
  tested fewer than two readings (a single reading is the level itself), so a device reporting
  once per ``interval`` is scored exactly as before, and a fast one adds one test per sensor:
  an electrical spike between two kept readings still counts.

A bucket is handed on as soon as it is complete: when the device's reading is the last one its
cadence lets fall in the bucket (its time plus the device's typical gap reaches the bucket's
end), or when a reading of a later bucket arrives. A device that reports once per
``interval`` or slower therefore passes through unchanged and without delay, one reading per
bucket. The typical gap is an exponential average of the device's gaps (capped at
``interval``); a device's first reading counts as its bucket's last. An emitted row carries the
time of its bucket's newest reading. State (arrays indexed by device, updated in place):

- ``cur``: bucket number of the pending bucket; ``has``: a bucket is pending;
- ``vals`` (devices x sensors): the pending bucket's newest value of each sensor;
- ``newest``: time of the pending bucket's newest reading;
- ``last_t``: the device's newest reading time; ``gap``: its typical gap (NaN: not known yet);
- ``raw`` (devices x sensors x NR): local level, innovation variance, readings learned,
  exceedance rate, the pending bucket's readings tested, exceedances, extreme z, and the
  sensor's previous reading and resolution.

``bucket_samples`` (Numba) and ``bucket_samples_reference`` (plain Python) agree.

>>> import numpy as np
>>> st = new_state(1, 1)
>>> t = np.arange(0.0, 1800.0, 60.0)                   # one reading a minute for 30 minutes
>>> X = (t / 60.0)[:, None]                            # the minute number
>>> dev, tt, V, ex = bucket_samples(np.zeros(len(t), np.int64), t, X, 600.0, 0.2, 2.0, *st)
>>> tt.tolist(), V[:, 0].tolist()                      # the first reading passes as its own bucket
([0.0, 540.0, 1140.0, 1740.0], [0.0, 9.0, 19.0, 29.0])
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from detection.kernels.config import SERIAL
from detection.kernels.sensor import tolerance

#: Readings more than this many scales from the local level are exceedances.
K_EXC = 4.0
#: Smallest weight of a reading in the band and the exceedance rate (memory ~ 1000 readings).
RAW_ALPHA = 1e-3
#: Weight of a reading in the sensor's local level (memory ~ 5 readings, short against a bucket).
LOCAL_ALPHA = 0.2
#: Readings a sensor's band learns before buckets test against it.
MIN_RAW = 50
R_M, R_V, R_N, R_RATE, B_N, B_EXC, B_Z, R_PREV, R_RES = 0, 1, 2, 3, 4, 5, 6, 7, 8
NR = 9
PRIOR_RATE = math.erfc(K_EXC / math.sqrt(2.0))


def new_state(n_devices: int, n_sensors: int) -> tuple:
    """Empty state for ``n_devices`` devices: (cur, has, vals, newest, last_t, gap, raw)."""
    raw = np.zeros((n_devices, n_sensors, NR))
    raw[:, :, R_RATE] = PRIOR_RATE
    raw[:, :, R_PREV] = np.nan
    return (np.full(n_devices, np.nan), np.zeros(n_devices, np.bool_),
            np.full((n_devices, n_sensors), np.nan), np.full(n_devices, np.nan),
            np.full(n_devices, np.nan), np.full(n_devices, np.nan), raw)


@njit(**SERIAL)
def poisson_tail(c: float, lam: float) -> float:
    """P(N >= c) for N ~ Poisson(lam), c >= 1 (terms summed in log space)."""
    if lam <= 0.0:
        return 0.0
    total = 0.0
    k = c
    while k < c + 200.0:
        term = math.exp(-lam + k * math.log(lam) - math.lgamma(k + 1.0))
        total += term
        if term < 1e-17 * total:
            break
        k += 1.0
    return min(total, 1.0)


@njit(**SERIAL)
def summary_decades(r) -> float:
    """Signed decades of the bucket's combined p-value (NaN: fewer than two readings tested)."""
    n = r[B_N]
    if n < 2.0:
        return np.nan
    p = min(1.0, n * math.erfc(abs(r[B_Z]) / math.sqrt(2.0)))
    if r[B_EXC] > 0.0:
        p = min(p, poisson_tail(r[B_EXC], n * r[R_RATE]))
    p = min(1.0, 2.0 * p)
    dec = -math.log10(max(p, 1e-300))
    return -dec if r[B_Z] < 0.0 else dec


def compatible(state: tuple, n_sensors: int) -> bool:
    """``state`` (e.g. from a checkpoint) has this module's layout for ``n_sensors`` sensors."""
    return len(state) == 7 and state[-1].ndim == 3 and state[-1].shape[1:] == (n_sensors, NR)


@njit(**SERIAL)
def observe_raw(r, x: float, res_floor: float) -> None:
    """Learn the sensor's resolution from ``x``; test ``x`` against the sensor's local level
    (once it has learned; scale: the spread of its innovations, floored by ``res_floor``
    resolution steps); then learn it."""
    prev = r[R_PREV]
    if not math.isnan(prev):
        dx = abs(x - prev)
        if dx > tolerance(x) and (r[R_RES] == 0.0 or dx < r[R_RES]):
            r[R_RES] = dx
    r[R_PREV] = x
    n = r[R_N]
    a = max(1.0 / (n + 1.0), RAW_ALPHA)
    d = x - r[R_M]
    s = max(math.sqrt(r[R_V]) + 1e-9 + 1e-4 * abs(r[R_M]), res_floor * r[R_RES])
    exc = False
    if n >= MIN_RAW:
        z = d / s
        if abs(z) > abs(r[B_Z]):
            r[B_Z] = z
        exc = abs(z) > K_EXC
        r[B_N] += 1.0
        if exc:
            r[B_EXC] += 1.0
        r[R_RATE] += a * ((1.0 if exc else 0.0) - r[R_RATE])
    if not exc and n >= 1.0:
        r[R_V] = (1.0 - a) * r[R_V] + a * d * d
    if n >= 1.0:                                  # the level follows, one spike moves it little
        c = K_EXC * s
        r[R_M] += max(1.0 / (n + 1.0), LOCAL_ALPHA) * min(max(d, -c), c)
    else:
        r[R_M] = x
    r[R_N] = n + 1.0


@njit(**SERIAL)
def _emit(d, m, out_dev, out_t, out_X, out_ex, has, vals, newest, raw):
    """Write device ``d``'s pending bucket as output row ``m`` and clear it."""
    out_dev[m] = d
    out_t[m] = newest[d]
    for j in range(vals.shape[1]):
        out_X[m, j] = vals[d, j]
        vals[d, j] = np.nan
        out_ex[m, j] = summary_decades(raw[d, j])
        raw[d, j, B_N] = 0.0
        raw[d, j, B_EXC] = 0.0
        raw[d, j, B_Z] = 0.0
    has[d] = False


@njit(**SERIAL)
def bucket_samples(dev, t_s, X, interval, alpha, res_floor, cur, has, vals, newest, last_t, gap, raw):
    """Feed rows ``(dev[i], t_s[i], X[i])`` in order (``interval``: bucket length, seconds;
    ``alpha``: weight of a new gap in the typical gap; ``res_floor``: band scale floor in
    resolution steps); return the completed buckets as
    ``(devices int64[m], times float64[m], values float64[m, sensors], ex float64[m, sensors])``
    in completion order (``ex``: signed decades of the bucket summary's test, NaN: none)."""
    n, s = X.shape
    out_dev = np.empty(2 * n, np.int64)
    out_t = np.empty(2 * n)
    out_X = np.empty((2 * n, s))
    out_ex = np.empty((2 * n, s))
    m = 0
    for i in range(n):
        d = dev[i]
        t = t_s[i]
        b = np.floor(t / interval)
        if has[d] and b != cur[d]:                      # a later (or earlier) bucket: hand on
            _emit(d, m, out_dev, out_t, out_X, out_ex, has, vals, newest, raw)
            m += 1
        for j in range(s):
            if not np.isnan(X[i, j]):
                observe_raw(raw[d, j], X[i, j], res_floor)
        if not np.isnan(last_t[d]) and t > last_t[d]:
            g = min(t - last_t[d], interval)
            gap[d] = g if np.isnan(gap[d]) else gap[d] + alpha * (g - gap[d])
        if np.isnan(last_t[d]) or t > last_t[d]:
            last_t[d] = t
        if not has[d] or t >= newest[d]:
            newest[d] = t
            for j in range(s):
                if not np.isnan(X[i, j]):
                    vals[d, j] = X[i, j]
        cur[d] = b
        has[d] = True
        g = interval if np.isnan(gap[d]) else gap[d]
        if t + g >= (b + 1.0) * interval * (1.0 - 1e-12):   # the bucket's last reading
            _emit(d, m, out_dev, out_t, out_X, out_ex, has, vals, newest, raw)
            m += 1
    return out_dev[:m], out_t[:m], out_X[:m], out_ex[:m]


def _decades_reference(r) -> float:
    n = r[B_N]
    if n < 2:
        return np.nan
    from scipy.stats import norm, poisson
    p = min(1.0, n * 2.0 * norm.sf(abs(r[B_Z])))
    if r[B_EXC] > 0:
        p = min(p, float(poisson.sf(r[B_EXC] - 1, n * r[R_RATE])))
    p = min(1.0, 2.0 * p)
    return float(np.copysign(-np.log10(max(p, 1e-300)), -1.0 if r[B_Z] < 0 else 1.0))


def _observe_raw_reference(r, x: float, res_floor: float) -> None:
    if not np.isnan(r[R_PREV]) and abs(x - r[R_PREV]) > 1e-12 * max(1.0, abs(x)):
        r[R_RES] = abs(x - r[R_PREV]) if r[R_RES] == 0.0 else min(r[R_RES], abs(x - r[R_PREV]))
    r[R_PREV] = x
    n = r[R_N]
    a = max(1.0 / (n + 1.0), RAW_ALPHA)
    d = x - r[R_M]
    s = max(np.sqrt(r[R_V]) + 1e-9 + 1e-4 * abs(r[R_M]), res_floor * r[R_RES])
    exc = False
    if n >= MIN_RAW:
        r[B_Z] = d / s if abs(d / s) > abs(r[B_Z]) else r[B_Z]
        exc = abs(d / s) > K_EXC
        r[B_N] += 1
        r[B_EXC] += exc
        r[R_RATE] += a * (float(exc) - r[R_RATE])
    if not exc and n >= 1.0:
        r[R_V] = (1.0 - a) * r[R_V] + a * d * d
    r[R_M] = x if n < 1 else r[R_M] + max(1.0 / (n + 1.0), LOCAL_ALPHA) * float(np.clip(d, -K_EXC * s, K_EXC * s))
    r[R_N] = n + 1


def bucket_samples_reference(dev, t_s, X, interval, alpha, res_floor, cur, has, vals, newest, last_t, gap, raw):
    """Plain Python reference of :func:`bucket_samples` (same in-place contract; SciPy tails)."""
    out: list[tuple] = []

    def emit(d):
        out.append((d, newest[d], vals[d].copy(), np.array([_decades_reference(r) for r in raw[d]])))
        vals[d] = np.nan
        raw[d, :, B_N:B_Z + 1] = 0.0
        has[d] = False

    for i in range(len(dev)):
        d, t = int(dev[i]), float(t_s[i])
        b = np.floor(t / interval)
        if has[d] and b != cur[d]:
            emit(d)
        for j in np.flatnonzero(~np.isnan(X[i])):
            _observe_raw_reference(raw[d, j], X[i, j], res_floor)
        if not np.isnan(last_t[d]) and t > last_t[d]:
            g = min(t - last_t[d], interval)
            gap[d] = g if np.isnan(gap[d]) else gap[d] + alpha * (g - gap[d])
        last_t[d] = t if np.isnan(last_t[d]) else max(last_t[d], t)
        if not has[d] or t >= newest[d]:        # a late (older) reading does not overwrite
            newest[d] = t
            present = ~np.isnan(X[i])
            vals[d][present] = X[i][present]
        cur[d] = b
        has[d] = True
        g = interval if np.isnan(gap[d]) else gap[d]
        if t + g >= (b + 1.0) * interval * (1.0 - 1e-12):
            emit(d)
    s = X.shape[1]
    return (np.array([o[0] for o in out], dtype=np.int64), np.array([o[1] for o in out], dtype=np.float64),
            np.array([o[2] for o in out], dtype=np.float64).reshape(len(out), s),
            np.array([o[3] for o in out], dtype=np.float64).reshape(len(out), s))
