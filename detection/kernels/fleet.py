"""The batch kernel: every detector for every (device, sensor), one row at a time per device.

Rows are grouped by device (``order``/``starts`` from a stable sort, so each device's rows stay
in time order) and the groups are split over threads with ``prange``; a device's state is only
touched by the thread that owns its group, so results do not depend on the thread count.

Per row the kernel (1) scores every warm sensor present: EWMA z, robust z, CUSUM over the
clipped robust z, and the Mahalanobis distance of the clipped z-vector; (2) fuses the smallest
tail probability, Bonferroni-adjusted for the number of tests, into a score in [0, 1];
(3) learns: a flagged row teaches nothing, and a sensor whose robust z exceeds ``learn_clip``
is not learned either (optionally re-initialised after ``relearn`` such readings in a row).

State layout (float64 unless noted), ``D`` devices, ``S`` sensors:
``ew[D, S, 2]`` EWMA mean/var, ``rb[D, S, 2]`` robust centre/MAD, ``cs[D, S, 2]`` CUSUM
upper/lower, ``cnt[D, S, 2]`` int64 learned count / consecutive gated readings,
``dev[D, 3]`` rows seen, last timestamp, refractory countdown.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from detection.kernels import cusum, ewma, robust
from detection.kernels.config import PARALLEL, SERIAL
from detection.kernels.mahalanobis import quad_form
from detection.kernels.tails import chi2_upper, cusum_tail, fuse, normal_two_sided

# Indices into the parameter vector ``P`` (see detection.fleet.FleetConfig.params).
ALPHA, ROBUST_LR, CUSUM_K, CLIP, LEARN_CLIP, WARMUP, THRESHOLD, SCALE = 0, 1, 2, 3, 4, 5, 6, 7
EPS_ABS, EPS_REL, INTERVAL, MAX_GAP, REFRACTORY, SUPPRESS, RELEARN, USE_MV = 8, 9, 10, 11, 12, 13, 14, 15
N_PARAMS = 16


def screening_table(n_sensors: int, cusum_k: float) -> np.ndarray:
    """Critical statistics per number of tests ``n`` (columns): the value at which each test's
    p-value equals ``1 / n``, shrunk slightly so a skipped test is clearly >= 1 / n.

    Row 0: two-sided normal |z|; row 1: CUSUM statistic; row ``2 + dof``: chi-square d2 under the
    Wilson-Hilferty approximation the kernel uses.
    """
    from scipy.stats import norm

    n_max = 3 * n_sensors + 1
    crit = np.full((n_sensors + 3, n_max + 1), np.inf)
    shrink = 1.0 - 1e-9
    for n in range(1, n_max + 1):
        crit[0, n] = norm.isf(0.5 / n) * shrink
        crit[1, n] = math.log(2.0 * n) / (2.0 * cusum_k) * shrink
        w = norm.isf(1.0 / n)
        for dof in range(1, n_sensors + 1):
            c = 2.0 / (9.0 * dof)
            base = (1.0 - c) + w * math.sqrt(c)
            crit[2 + dof, n] = dof * base**3 * shrink if base > 0.0 else 0.0
    return crit


@njit(**SERIAL)
def update_row(i, d, X, t, ew, rb, cs, cnt, dev, Rinv, mv_ready, P, crit, scratch, z_out, fused_out, flag_out, acc_out, zc_out):
    """Score, fuse and learn row ``i`` of device ``d``; ``scratch`` is a (2, S) work array.

    Outputs per row: robust z, fused score, flag, accepted (warm and unflagged), and the clipped
    z-vector of accepted rows (zeros otherwise) for the per-model correlation."""
    S = X.shape[1]
    zc = scratch[0]
    warmup = P[WARMUP]
    clip = P[CLIP]
    eps_abs = P[EPS_ABS]
    eps_rel = P[EPS_REL]

    # Nominal steps since this device's previous reading (1 when timestamps are not used).
    steps = 1.0
    ti = t[i]
    if not math.isnan(ti):
        last = dev[d, 1]
        if P[INTERVAL] > 0.0 and not math.isnan(last):
            steps = (ti - last) / P[INTERVAL]
            if steps < 0.0:
                steps = 0.0
            elif steps > P[MAX_GAP]:
                steps = P[MAX_GAP]
        if math.isnan(last) or ti > last:
            dev[d, 1] = ti
    dev[d, 0] += 1.0
    a_e = ewma.decay(P[ALPHA], steps)
    a_r = ewma.decay(P[ROBUST_LR], steps)

    # 1. score
    n_present = 0
    zmax_e = 0.0
    zmax_r = 0.0
    smax = 0.0
    for j in range(S):
        x = X[i, j]
        zc[j] = 0.0
        z_out[i, j] = np.nan
        if math.isnan(x) or cnt[d, j, 0] < warmup:
            continue
        ze = ewma.score(ew[d, j, 0], ew[d, j, 1], x, eps_abs, eps_rel)
        zr = robust.score(rb[d, j], x, eps_abs, eps_rel)
        z_out[i, j] = zr
        n_present += 1
        if abs(ze) > zmax_e:
            zmax_e = abs(ze)
        if abs(zr) > zmax_r:
            zmax_r = abs(zr)
        c = zr
        if c > clip:
            c = clip
        elif c < -clip:
            c = -clip
        zc[j] = c
        s = cusum.update(cs[d, j], c, P[CUSUM_K])
        if s > smax:
            smax = s

    # 2. fuse
    fused = np.nan
    raw_flag = False
    if n_present > 0:
        # Screening: ``crit`` holds, per number of tests, the statistic below which a test's
        # p-value is >= 1 / n_tests (it then cannot make the fused score non-zero), so the tail
        # functions only run for rows that stand out. Exact: the skipped p-values are never the
        # minimum that matters.
        n_tests = 3 * n_present
        use_mv = P[USE_MV] > 0.0 and mv_ready and n_present >= 2
        if use_mv:
            n_tests += 1
        p_min = 1.0
        zmax = zmax_e if zmax_e > zmax_r else zmax_r
        if zmax > crit[0, n_tests]:
            p_min = normal_two_sided(zmax)
        if smax > crit[1, n_tests]:
            p = cusum_tail(smax, P[CUSUM_K])
            if p < p_min:
                p_min = p
        if use_mv:
            d2 = quad_form(Rinv, zc, scratch[1])
            if d2 > crit[2 + n_present, n_tests]:
                p = chi2_upper(d2, n_present)
                if p < p_min:
                    p_min = p
        fused = fuse(p_min, float(n_tests), P[SCALE])
        raw_flag = fused >= P[THRESHOLD]
    if dev[d, 2] > 0.0:
        dev[d, 2] -= 1.0
        fused_out[i] = fused * P[SUPPRESS]
        flag_out[i] = False
    else:
        fused_out[i] = fused
        flag_out[i] = raw_flag
        if raw_flag:
            dev[d, 2] = P[REFRACTORY]
    acc = n_present > 0 and not raw_flag
    acc_out[i] = acc
    for j in range(S):                       # clipped z of accepted rows feed the correlation
        zc_out[i, j] = zc[j] if acc else 0.0

    # 3. learn (never from a flagged row, never from a gated sensor)
    for j in range(S):
        x = X[i, j]
        if math.isnan(x):
            continue
        n = cnt[d, j, 0]
        if n >= warmup:
            if raw_flag or abs(z_out[i, j]) > P[LEARN_CLIP]:
                cnt[d, j, 1] += 1
                if P[RELEARN] <= 0.0 or cnt[d, j, 1] < P[RELEARN]:
                    continue
                # a lasting new level: start this sensor over from this reading
                n = 0
                cnt[d, j, 0] = 0
                cs[d, j, 0] = 0.0
                cs[d, j, 1] = 0.0
            cnt[d, j, 1] = 0
        ewma.learn(ew[d, j], x, ewma.cold_start(a_e, n))
        if n < warmup:
            robust.init_from_moments(rb[d, j], ew[d, j, 0], ew[d, j, 1])
        else:
            robust.learn(rb[d, j], x, a_r, eps_abs, eps_rel)
        cnt[d, j, 0] = n + 1


@njit(**PARALLEL)
def update_rows(order, starts, dev_idx, X, t, ew, rb, cs, cnt, dev, Rinv, mv_ready, P, crit, n_chunks, z_out, fused_out, flag_out, acc_out, zc_out):
    """Process every row; ``order[starts[g]:starts[g+1]]`` are the rows of one device, in order."""
    S = X.shape[1]
    n_groups = starts.shape[0] - 1
    for c in prange(n_chunks):
        scratch = np.empty((2, S))
        g0 = c * n_groups // n_chunks
        g1 = (c + 1) * n_groups // n_chunks
        for g in range(g0, g1):
            for k in range(starts[g], starts[g + 1]):
                i = order[k]
                update_row(i, dev_idx[i], X, t, ew, rb, cs, cnt, dev, Rinv, mv_ready, P, crit, scratch, z_out, fused_out, flag_out, acc_out, zc_out)


@njit(**SERIAL)
def update_rows_serial(dev_idx, X, t, ew, rb, cs, cnt, dev, Rinv, mv_ready, P, crit, z_out, fused_out, flag_out, acc_out, zc_out):
    """The same in plain row order on one thread (no grouping needed)."""
    scratch = np.empty((2, X.shape[1]))
    for i in range(X.shape[0]):
        update_row(i, dev_idx[i], X, t, ew, rb, cs, cnt, dev, Rinv, mv_ready, P, crit, scratch, z_out, fused_out, flag_out, acc_out, zc_out)
