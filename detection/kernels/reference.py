"""Plain NumPy reference of every detector kernel: slow to write wrong, used to test the kernels.

The reference processes a batch in *rounds*: round ``r`` holds the ``r``-th row of every device
in the batch, so within a round each device appears at most once and the update is vectorised
over devices with ordinary array expressions, one detector after the other, exactly as the
kernels in ``fleet.py`` (and ``ewma.py``, ``robust.py``, ``cusum.py``, ``mahalanobis.py``,
``tails.py``) define them. It mutates the same state arrays as the kernel.

>>> import numpy as np
>>> from detection.kernels.reference import normal_two_sided, cusum_tail
>>> float(normal_two_sided(np.array([0.0]))[0]), float(cusum_tail(np.array([0.0]), 0.5)[0])
(1.0, 1.0)
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erfc

from detection.kernels import fleet as K

MAD_TO_SD = 1.4826


def normal_two_sided(z: np.ndarray) -> np.ndarray:
    return erfc(np.abs(z) / np.sqrt(2.0))


def chi2_upper(d2: np.ndarray, dof: np.ndarray) -> np.ndarray:
    dof = np.maximum(dof, 1.0)
    c = 2.0 / (9.0 * dof)
    w = (np.cbrt(np.maximum(d2, 0.0) / dof) - (1.0 - c)) / np.sqrt(c)
    return np.where(d2 <= 0.0, 1.0, 0.5 * erfc(w / np.sqrt(2.0)))


def cusum_tail(s: np.ndarray, k: float) -> np.ndarray:
    return np.minimum(1.0, 2.0 * np.exp(-2.0 * k * s))


def fuse(p_min: np.ndarray, n_tests: np.ndarray, scale: float) -> np.ndarray:
    p = p_min * n_tests
    f = -np.log10(np.maximum(p, 1e-300)) / scale
    return np.where(p >= 1.0, 0.0, np.minimum(f, 1.0))


def occurrence_rank(dev_idx: np.ndarray) -> np.ndarray:
    """For each row, how many earlier rows of the batch belong to the same device."""
    order = np.argsort(dev_idx, kind="stable")
    ds = dev_idx[order]
    first = np.flatnonzero(np.concatenate(([True], ds[1:] != ds[:-1])))
    group_start = np.repeat(first, np.diff(np.concatenate((first, [len(ds)]))))
    rank = np.empty(len(dev_idx), dtype=np.int64)
    rank[order] = np.arange(len(ds)) - group_start
    return rank


def update_rows(dev_idx, X, t, ew, rb, cs, cnt, dev, Rinv, mv_ready, P):
    """Reference for :func:`detection.kernels.fleet.update_rows`; returns (z, fused, flag, acc, zc)."""
    n, S = X.shape
    z = np.full((n, S), np.nan)
    fused = np.full(n, np.nan)
    flag = np.zeros(n, dtype=bool)
    acc = np.zeros(n, dtype=bool)
    zc = np.zeros((n, S))
    if n == 0:
        return z, fused, flag, acc, zc
    rank = occurrence_rank(dev_idx)
    for r in range(rank.max() + 1):
        rows = np.flatnonzero(rank == r)
        _round(rows, dev_idx[rows], X, t, ew, rb, cs, cnt, dev, Rinv, mv_ready, P, z, fused, flag, acc, zc)
    return z, fused, flag, acc, zc


def _round(rows, d, X, t, ew, rb, cs, cnt, dev, Rinv, mv_ready, P, z_out, fused_out, flag_out, acc_out, zc_out):
    warmup, clip, k = P[K.WARMUP], P[K.CLIP], P[K.CUSUM_K]
    eps_abs, eps_rel = P[K.EPS_ABS], P[K.EPS_REL]
    x = X[rows]
    ti = t[rows]

    # steps since the previous reading
    last = dev[d, 1]
    steps = np.ones(len(rows))
    if P[K.INTERVAL] > 0.0:
        use = ~np.isnan(ti) & ~np.isnan(last)
        steps[use] = np.clip((ti[use] - last[use]) / P[K.INTERVAL], 0.0, P[K.MAX_GAP])
    newer = ~np.isnan(ti) & (np.isnan(last) | (ti > np.nan_to_num(last, nan=-np.inf)))
    dev[d[newer], 1] = ti[newer]
    dev[d, 0] += 1.0
    a_r = 1.0 - (1.0 - P[K.ROBUST_LR]) ** steps

    # 1. score
    m, v = ew[d, :, 0], ew[d, :, 1]
    c, s = rb[d, :, 0], rb[d, :, 1]
    n_learned = cnt[d, :, 0]
    obs = ~np.isnan(x)
    present = obs & (n_learned >= warmup)
    with np.errstate(invalid="ignore"):
        ze = (x - m) / (np.sqrt(v) + eps_abs + eps_rel * np.abs(m))
        scale = MAD_TO_SD * s + eps_abs + eps_rel * np.abs(c)
        zr = (x - c) / scale
    z_out[rows] = np.where(present, zr, np.nan)
    zc = np.where(present, np.clip(np.nan_to_num(zr), -clip, clip), 0.0)
    up = np.maximum(0.0, cs[d, :, 0] + zc - k)
    lo = np.maximum(0.0, cs[d, :, 1] - zc - k)
    cs[d, :, 0] = np.where(present, up, cs[d, :, 0])
    cs[d, :, 1] = np.where(present, lo, cs[d, :, 1])
    smax = np.where(present, np.maximum(up, lo), 0.0).max(axis=1)
    zmax_e = np.where(present, np.abs(ze), 0.0).max(axis=1)
    zmax_r = np.where(present, np.abs(zr), 0.0).max(axis=1)
    n_present = present.sum(axis=1).astype(np.float64)

    # 2. fuse
    p_min = np.minimum(np.minimum(normal_two_sided(zmax_e), normal_two_sided(zmax_r)), cusum_tail(smax, k))
    n_tests = 3.0 * n_present
    if P[K.USE_MV] > 0.0 and mv_ready:
        mv = n_present >= 2
        d2 = np.einsum("ij,jk,ik->i", zc, Rinv, zc)
        p_min = np.where(mv, np.minimum(p_min, chi2_upper(d2, n_present)), p_min)
        n_tests = n_tests + mv
    fused = np.where(n_present > 0, fuse(p_min, n_tests, P[K.SCALE]), np.nan)
    raw_flag = np.nan_to_num(fused, nan=-1.0) >= P[K.THRESHOLD]
    cool = dev[d, 2] > 0.0
    fused_out[rows] = np.where(cool, fused * P[K.SUPPRESS], fused)
    flag_out[rows] = raw_flag & ~cool
    dev[d, 2] = np.where(cool, dev[d, 2] - 1.0, np.where(raw_flag, P[K.REFRACTORY], dev[d, 2]))
    acc_out[rows] = (n_present > 0) & ~raw_flag
    zc_out[rows] = np.where(acc_out[rows][:, None], zc, 0.0)

    # 3. learn
    warm = obs & (n_learned >= warmup)
    with np.errstate(invalid="ignore"):
        gated = warm & (raw_flag[:, None] | (np.abs(zr) > P[K.LEARN_CLIP]))
    streak = cnt[d, :, 1]
    relearn = gated & (P[K.RELEARN] > 0.0) & (streak + 1 >= P[K.RELEARN])
    cnt[d, :, 1] = np.where(gated & ~relearn, streak + 1, np.where(warm, 0, streak))
    cs[d, :, 0] = np.where(relearn, 0.0, cs[d, :, 0])
    cs[d, :, 1] = np.where(relearn, 0.0, cs[d, :, 1])
    learn = obs & (~gated | relearn)
    n_eff = np.where(relearn, 0, n_learned)
    a_e = np.maximum(1.0 - (1.0 - P[K.ALPHA]) ** steps[:, None], 1.0 / (n_eff + 1.0))
    with np.errstate(invalid="ignore"):
        dlt = x - m
        new_m = m + a_e * dlt
        new_v = (1.0 - a_e) * (v + a_e * dlt * dlt)
        step = a_r[:, None] * scale
        new_c = c + step * np.sign(x - c)
        new_s = np.maximum(0.0, s + step * np.sign(np.abs(x - c) - s))
    cold = learn & (n_eff < warmup)
    hot = learn & (n_eff >= warmup)
    ew[d, :, 0] = np.where(learn, new_m, m)
    ew[d, :, 1] = np.where(learn, new_v, v)
    rb[d, :, 0] = np.where(cold, new_m, np.where(hot, new_c, c))
    rb[d, :, 1] = np.where(cold, np.sqrt(np.where(cold, new_v, 0.0)) / MAD_TO_SD, np.where(hot, new_s, s))
    cnt[d, :, 0] = np.where(learn, n_eff + 1, n_learned)


def context_novelty(values, lo: float, span: float, n_bins: int, tiles: int, pad: int, refractory: int,
                    window: int = 1, min_surprise: float = 0.0, prior_n: float = 10.0, phases=None,
                    slots: int = 0, phase_pad: int = 0, phase_weight: float = 0.0) -> np.ndarray:
    """Reference for :func:`detection.kernels.context.novelty_scores` with Python sets (one per
    tiling) instead of occupancy grids; starts with no previous value and no countdown.
    ``phases`` (one slot per value; outside ``0 .. slots - 1``: none) feeds the phase channel."""
    seen = [set() for _ in range(tiles)]
    pseen = [set() for _ in range(tiles)]
    prev: list[int | None] = [None] * tiles
    ring = [0.0] * window
    pos = 0
    n_seen = n_novel = p_seen = p_novel = 0

    def weight(novel_count, seen_count):
        rate = (novel_count + 1.0) / (seen_count + prior_n)
        return (-math.log10(rate) if rate < 1.0 else 0.0) + 1e-3

    out = np.zeros(len(values))
    cool = 0
    for i, x in enumerate(np.asarray(values, dtype=np.float64)):
        w = 0.0
        if np.isnan(x):
            prev = [None] * tiles
        else:
            flags = []
            for t in range(tiles):
                b = int(np.clip(np.floor((x - lo) / span * n_bins + t / tiles), -pad, n_bins + pad))
                if prev[t] is None:
                    flags.append(False)
                else:
                    flags.append((prev[t], b) not in seen[t])
                    seen[t].add((prev[t], b))
                prev[t] = b
            n_seen += 1
            if all(flags):
                n_novel += 1
                w = weight(n_novel, n_seen)
            ph = -1 if phases is None else int(phases[i])
            if 0 <= ph < slots:
                pflags = []
                for t in range(tiles):
                    b = int(np.clip(np.floor((x - lo) / span * n_bins + t / tiles), -phase_pad, n_bins + phase_pad))
                    pflags.append((ph, b) not in pseen[t])
                    pseen[t].add((ph, b))
                p_seen += 1
                if all(pflags):
                    p_novel += 1
                    w += phase_weight * weight(p_novel, p_seen)
        ring[pos] = w
        pos = (pos + 1) % window
        total = 0.0
        for v in ring:
            total += v
        if cool > 0:
            cool -= 1
        elif total > 0.0 and total >= min_surprise:
            out[i] = total / (total + min_surprise)
            cool = refractory
    return out
