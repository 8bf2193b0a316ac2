"""Plain NumPy reference of every detector kernel: slow to write wrong, used to test the kernels.

The fleet reference processes a batch one row at a time in plain Python over the same state
arrays as the kernel (``fleet.py`` with ``ewma.py``, ``robust.py``, ``cusum.py``,
``mahalanobis.py``, ``tails.py``, ``sensor.py``, ``context.py``), written independently of it:
SciPy tails, NumPy medians, Python integers for the packed bit grids.

>>> import numpy as np
>>> from detection.kernels.reference import normal_two_sided, cusum_tail
>>> float(normal_two_sided(np.array([0.0]))[0]), float(cusum_tail(np.array([0.0]), 0.5)[0])
(1.0, 1.0)
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erfc

from detection.kernels import context as C
from detection.kernels import fleet as K
from detection.kernels import sensor as Q

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


def _seen_bit(grid: np.ndarray, tiling: int, bit: int) -> bool:
    """Was the bit set? Set it (plain Python integers on the packed words)."""
    word, off = divmod(int(bit), 64)
    old = int(grid[word, tiling])
    grid[word, tiling] = np.uint64(old | (1 << off))
    return bool((old >> off) & 1)


def _level(x: float, lo: float, span: float, n_bins: int, offset: float, pad: int) -> int:
    return int(np.clip(np.floor((x - lo) / span * n_bins + offset), -pad, n_bins + pad)) + pad


class _Sensor:
    """One (device, sensor)'s slices of the state arrays, with the reference's own logic."""

    def __init__(self, d, j, st: dict, P):
        self.d, self.j, self.st, self.P = d, j, st, P
        self.q = st["sq"][d, j]

    # -- context ------------------------------------------------------------------------
    def _transition(self, x: float) -> bool:
        P, st, d, j = self.P, self.st, self.d, self.j
        n_bins, pad = int(P[K.CTX_BINS]), int(P[K.CTX_PAD])
        g = n_bins + 2 * pad + 1
        prev = st["cprev"][d, j]
        novel = True
        for t in range(prev.shape[0]):
            b = _level(x, self.q[Q.LO], self.q[Q.SPAN], n_bins, t / prev.shape[0], pad)
            if prev[t] < 0 or _seen_bit(st["cg"][d, j], t, prev[t] * g + b):
                novel = False
            prev[t] = b
        return novel

    def _phase(self, x: float, phase: int) -> bool:
        P, st, d, j = self.P, self.st, self.d, self.j
        n_bins, pad = int(P[K.CTX_BINS]), int(P[K.PH_PAD])
        g = n_bins + 2 * pad + 1
        tiles = st["cprev"].shape[2]
        flags = [not _seen_bit(st["pg"][d, j], t, phase * g + _level(x, self.q[Q.LO], self.q[Q.SPAN], n_bins,
                                                                     t / tiles, pad)) for t in range(tiles)]
        return all(flags)

    def context(self, x: float, phase: int) -> float:
        P, c, ring = self.P, self.st["cc"][self.d, self.j], self.st["cring"][self.d, self.j]

        def weight(novel, k_seen, k_novel):
            c[k_seen] += 1
            if not novel:
                return 0.0
            c[k_novel] += 1
            rate = (c[k_novel] + 1.0) / (c[k_seen] + P[K.CTX_PRIOR])
            return (-math.log10(rate) if rate < 1.0 else 0.0) + 1e-3

        w = weight(self._transition(x), C.N_SEEN, C.N_NOVEL)
        if 0 <= phase < int(P[K.PH_SLOTS]):
            w += P[K.PH_WEIGHT] * weight(self._phase(x, phase), C.N_PSEEN, C.N_PNOVEL)
        pos = int(c[C.POS])
        if w != 0.0 or ring[pos] != 0.0:
            ring[pos] = w
            c[C.TOTAL] = float(sum(ring.tolist()))
        c[C.POS] = (pos + 1) % len(ring)
        if c[C.COOL] > 0:
            c[C.COOL] -= 1
            return 0.0
        if c[C.TOTAL] > 0.0 and c[C.TOTAL] >= P[K.CTX_MIN_S]:
            c[C.COOL] = P[K.CTX_REFRACTORY]
            return c[C.TOTAL] / (c[C.TOTAL] + P[K.CTX_MIN_S])
        return 0.0

    # -- warm-up --------------------------------------------------------------------------
    def start(self) -> None:
        P, st, d, j, q = self.P, self.st, self.d, self.j, self.q
        W = int(st["cnt"][d, j, 0])
        b = st["wb"][d, j, :W].copy()
        st["cnt"][d, j, 1] = 0
        st["cs"][d, j] = 0.0
        tol = 1e-12 * np.maximum(1.0, np.abs(b))
        if q[Q.KIND] == Q.KIND_NEW:
            db = np.diff(b)
            if P[K.COUNTERS] > 0 and W >= 3 and (db >= -tol[1:]).all() and 2 * (db > tol[1:]).sum() >= W - 1:
                q[Q.KIND] = Q.KIND_COUNTER
                st["cnt"][d, j, 0] = 0
                return
            q[Q.KIND] = Q.KIND_RAW
        q[Q.SAME] = ((np.abs(np.diff(b)) <= tol[1:]).sum() + 1.0) / (W + 1.0)
        m = v = 0.0
        for k, x in enumerate(b):
            a = max(P[K.ALPHA], 1.0 / (k + 1.0))
            dlt = x - m
            m, v = m + a * dlt, (1.0 - a) * (v + a * dlt * dlt)
        st["ew"][d, j] = (m, v)
        lo, hi = b.min(), b.max()
        if hi - lo <= 1e-12 * max(1.0, abs(hi)):
            q[Q.CONST] = 1.0
            return
        med = np.median(b)
        st["rb"][d, j] = (med, max(np.median(np.abs(b - med)), np.sqrt(v) / MAD_TO_SD))
        q[Q.LO], q[Q.SPAN] = lo, hi - lo
        for k in ("cg", "pg", "cc", "cring"):
            st[k][d, j] = 0
        st["cprev"][d, j] = -1
        for k, x in enumerate(b):
            self._transition(x)
            ph = int(st["wph"][d, j, k])
            if 0 <= ph < int(P[K.PH_SLOTS]):
                self._phase(x, ph)

    def observe(self, x: float, t: float) -> tuple[float, bool]:
        q, P = self.q, self.P
        same = False
        if not np.isnan(q[Q.PREV]):
            dx = abs(x - q[Q.PREV])
            same = dx <= 1e-12 * max(1.0, abs(x))
            if not same and (q[Q.RES] == 0.0 or dx < q[Q.RES]):
                q[Q.RES] = dx
        q[Q.RUN] = q[Q.RUN] + 1 if same else 0.0
        v = x
        if q[Q.KIND] == Q.KIND_COUNTER:
            v = np.nan
            if not np.isnan(q[Q.PREV]) and x >= q[Q.PREV]:
                steps = 1.0
                if P[K.INTERVAL] > 0 and not np.isnan(t) and not np.isnan(q[Q.PREV_T]):
                    steps = (t - q[Q.PREV_T]) / P[K.INTERVAL]
                if steps > 0:
                    v = (x - q[Q.PREV]) / steps
        q[Q.PREV], q[Q.PREV_T] = x, t
        return v, same


def update_rows(dev_idx, X, t, ex, ew, rb, cs, cnt, dev, sq, wb, wph, cg, pg, cc, cprev, cring, Rinv, mv_ready, P):
    """Reference for :func:`detection.kernels.fleet.update_rows`, one row at a time in plain
    Python over the same state arrays; returns (z, fused, flag, acc, zc, stuck, ctx)."""
    n, S = X.shape
    st = {"ew": ew, "rb": rb, "cs": cs, "cnt": cnt, "sq": sq, "wb": wb, "wph": wph, "cg": cg, "pg": pg, "cc": cc,
          "cprev": cprev, "cring": cring}
    z = np.full((n, S), np.nan)
    fused = np.full(n, np.nan)
    ctx = np.full(n, np.nan)
    flag = np.zeros(n, dtype=bool)
    acc = np.zeros(n, dtype=bool)
    zc = np.zeros((n, S))
    stuck = np.zeros((n, S), dtype=bool)
    warmup, clip, k_cusum = int(P[K.WARMUP]), P[K.CLIP], P[K.CUSUM_K]
    eps_abs, eps_rel, res_floor = P[K.EPS_ABS], P[K.EPS_REL], P[K.RES_FLOOR]
    for i in range(n):
        d, ti = int(dev_idx[i]), float(t[i])
        steps = 1.0
        if not np.isnan(ti):
            last = dev[d, 1]
            if P[K.INTERVAL] > 0.0 and not np.isnan(last):
                steps = float(np.clip((ti - last) / P[K.INTERVAL], 0.0, P[K.MAX_GAP]))
            if np.isnan(last) or ti > last:
                dev[d, 1] = ti
        dev[d, 0] += 1.0
        a_e = 1.0 - (1.0 - P[K.ALPHA]) ** steps
        a_r = 1.0 - (1.0 - P[K.ROBUST_LR]) ** steps
        phase = -1
        slots = int(P[K.PH_SLOTS])
        if slots > 0 and not np.isnan(ti):
            phase = min(int(np.floor((ti % P[K.PH_PERIOD]) / P[K.PH_PERIOD] * slots)), slots - 1)
        zr = np.full(S, np.nan)
        ze = np.full(S, np.nan)
        vals = np.full(S, np.nan)
        rep = np.zeros(S)
        ctx_scores = []
        n_ex, p_ex = 0, 1.0
        for j in range(S):
            x = X[i, j]
            if np.isnan(x):
                if cnt[d, j, 0] >= warmup:
                    cprev[d, j] = -1
                continue
            sen = _Sensor(d, j, st, P)
            v, same = sen.observe(x, ti)
            rep[j] = same
            if np.isnan(v):
                continue
            if cnt[d, j, 0] < warmup:
                wb[d, j, cnt[d, j, 0]], wph[d, j, cnt[d, j, 0]] = v, phase
                cnt[d, j, 0] += 1
                if cnt[d, j, 0] >= warmup:
                    sen.start()
                continue
            q = sq[d, j]
            if q[Q.CONST] > 0:
                if abs(v - ew[d, j, 0]) > 1e-12 * max(1.0, abs(v)):
                    q[Q.CONST] = 0.0
                    wb[d, j, 0], wph[d, j, 0], cnt[d, j, 0] = v, phase, 1
                continue
            if P[K.USE_CTX] > 0:
                ctx_scores.append(sen.context(v, phase))
            if P[K.STUCK_P] > 0 and q[Q.RUN] >= 2 and q[Q.SAME] ** q[Q.RUN] < P[K.STUCK_P]:
                stuck[i, j] = True
                continue
            fl = res_floor * q[Q.RES]
            ze[j] = (v - ew[d, j, 0]) / max(np.sqrt(ew[d, j, 1]) + eps_abs + eps_rel * abs(ew[d, j, 0]), fl)
            zr[j] = (v - rb[d, j, 0]) / max(MAD_TO_SD * rb[d, j, 1] + eps_abs + eps_rel * abs(rb[d, j, 0]), fl)
            vals[j] = v
            e = ex[i, j]
            if not np.isnan(e) and P[K.USE_Z] > 0:
                n_ex += 1
                p_ex = min(p_ex, 10.0 ** (-abs(e)))
                z_ex = np.copysign(np.sqrt(2.0 * np.log(10.0) * abs(e)), e)
                if abs(z_ex) > abs(zr[j]):
                    zr[j] = z_ex
        present = ~np.isnan(zr)
        z[i] = zr
        zci = np.where(present, np.clip(np.nan_to_num(zr), -clip, clip), 0.0)
        up = np.maximum(0.0, cs[d, :, 0] + zci - k_cusum)
        lo = np.maximum(0.0, cs[d, :, 1] - zci - k_cusum)
        cs[d, :, 0] = np.where(present, up, cs[d, :, 0])
        cs[d, :, 1] = np.where(present, lo, cs[d, :, 1])
        n_present = int(present.sum())
        f = np.nan
        if n_present > 0 and P[K.USE_Z] > 0:
            p_min = min(p_ex, float(normal_two_sided(np.nanmax(np.abs(ze[present])))),
                        float(normal_two_sided(np.nanmax(np.abs(zr[present])))),
                        float(cusum_tail(np.maximum(up, lo)[present].max(), k_cusum)))
            n_tests = 3 * n_present + n_ex
            if P[K.USE_MV] > 0 and mv_ready and n_present >= 2:
                p_min = min(p_min, float(chi2_upper(np.array(zci @ Rinv @ zci), np.array(float(n_present)))))
                n_tests += 1
            f = float(fuse(np.array(p_min), np.array(float(n_tests)), P[K.SCALE]))
        if ctx_scores:
            ctx[i] = max(ctx_scores)
            f = ctx[i] if np.isnan(f) else max(f, ctx[i])
        raw = not np.isnan(f) and f >= P[K.THRESHOLD]
        if dev[d, 2] > 0:
            dev[d, 2] -= 1
            fused[i], flag[i] = f * P[K.SUPPRESS], False
        else:
            fused[i], flag[i] = f, raw
            if raw:
                dev[d, 2] = P[K.REFRACTORY]
        acc[i] = n_present > 0 and not raw
        if acc[i]:
            zc[i] = zci
        for j in np.flatnonzero(present):
            if raw or abs(zr[j]) > P[K.LEARN_CLIP]:
                cnt[d, j, 1] += 1
                if P[K.RELEARN] > 0 and cnt[d, j, 1] >= P[K.RELEARN]:
                    cnt[d, j] = 0
                    cs[d, j] = 0.0
                    sq[d, j, Q.CONST] = 0.0
                continue
            cnt[d, j, 1] = 0
            v = vals[j]
            a = max(a_e, 1.0 / (cnt[d, j, 0] + 1.0))
            dlt = v - ew[d, j, 0]
            ew[d, j] = (ew[d, j, 0] + a * dlt, (1.0 - a) * (ew[d, j, 1] + a * dlt * dlt))
            step = a_r * max(MAD_TO_SD * rb[d, j, 1] + eps_abs + eps_rel * abs(rb[d, j, 0]), res_floor * sq[d, j, Q.RES])
            c, s = rb[d, j]
            rb[d, j, 0] = c + step * np.sign(v - c)
            s_new = s + step * np.sign(abs(v - c) - s)
            rb[d, j, 1] = s_new if s_new >= 0.0 or abs(v - c) >= s else 0.0
            sq[d, j, Q.SAME] += a_e * (rep[j] - sq[d, j, Q.SAME])
            cnt[d, j, 0] += 1
    return z, fused, flag, acc, zc, stuck, ctx


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
