"""The batch kernel: every detector for every (device, sensor), one row at a time per device.

Rows are grouped by device (``order``/``starts`` from a stable sort, so each device's rows stay
in time order) and the groups are split over threads with ``prange``; a device's state is only
touched by the thread that owns its group, so results do not depend on the thread count.

Per row and sensor the kernel (0) learns what the sensor is (``detection.kernels.sensor``:
resolution, repeats, counter increments) and, while warming up, buffers the value; the
reading that fills the buffer *starts* the sensor: EWMA moments, median/MAD, repeat share and
the context channel's level range and known transitions all come from the buffer (a counter
starts over on its increments, a sensor that never moved waits until it does). Then (1) it
scores every warm sensor present: EWMA z, robust z (scales floored by the resolution), CUSUM
over the clipped robust z, the Mahalanobis distance of the clipped z-vector, an optional
external exceedance test (``ex``, from the bucket summaries of fast streams; an empty
``(0, S)`` array when there is none), and the context
novelty of the reading (``detection.kernels.context``: a transition between levels, or a level
at this time of day, never seen); a stuck sensor is reported and skipped; (2) it fuses the
smallest tail probability of the z tests, Bonferroni-adjusted for their number, into a score
in [0, 1] and takes the larger of that and the context score; (3) learns: a flagged row teaches
the z detectors nothing, and a sensor whose robust z exceeds ``learn_clip`` is not learned
either (re-baselined after ``relearn`` such readings in a row, if set); the context channel
learns every reading.

State layout (float64 unless noted), ``D`` devices, ``S`` sensors, ``W`` warm-up, ``T``
tilings: ``ew[D, S, 2]`` EWMA mean/var, ``rb[D, S, 2]`` robust centre/MAD, ``cs[D, S, 2]``
CUSUM upper/lower, ``cnt[D, S, 2]`` int64 readings learned (buffered while < W) /
consecutive gated readings, ``dev[D, 3]`` rows seen, last timestamp, refractory countdown,
``sq[D, S, NQ]`` sensor facts (``detection.kernels.sensor``), ``wb[D, S, W]`` warm-up buffer
and ``wph[D, S, W]`` int64 its phase slots, ``cg[D, S, words, T]`` / ``pg[D, S, words, T]``
uint64 transition / phase bit grids, ``cc[D, S, 7]`` context counters, ``cprev[D, S, T]``
int64 previous levels, ``cring[D, S, window]`` recent surprise weights.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from detection.kernels import context as C
from detection.kernels import cusum, ewma, robust
from detection.kernels import sensor as Q
from detection.kernels.config import PARALLEL, SERIAL
from detection.kernels.mahalanobis import quad_form
from detection.kernels.tails import chi2_upper, cusum_tail, fuse, normal_two_sided

# Indices into the parameter vector ``P`` (see detection.fleet.FleetConfig.params).
ALPHA, ROBUST_LR, CUSUM_K, CLIP, LEARN_CLIP, WARMUP, THRESHOLD, SCALE = 0, 1, 2, 3, 4, 5, 6, 7
EPS_ABS, EPS_REL, INTERVAL, MAX_GAP, REFRACTORY, SUPPRESS, RELEARN, USE_MV = 8, 9, 10, 11, 12, 13, 14, 15
USE_Z, USE_CTX, CTX_BINS, CTX_PAD, CTX_MIN_S, CTX_PRIOR, CTX_REFRACTORY = 16, 17, 18, 19, 20, 21, 22
PH_SLOTS, PH_PERIOD, PH_PAD, PH_WEIGHT, RES_FLOOR, STUCK_P, COUNTERS = 23, 24, 25, 26, 27, 28, 29
# Not a configuration value: the largest eigenvalue of the batch's Rinv, set by FleetDetector
# before each batch (bounds the Mahalanobis distance; see ``update_row``).
MV_TOP = 30
N_PARAMS = 31
# Relative and absolute margin of the Mahalanobis screening bound (rounding is ~1e-10 at most).
MV_MARGIN = 1e-6
# ``update_row``'s phase before it is needed (warm-up, context): a warm row of a configuration
# without the context channel never needs it (it costs an fmod per row).
NO_PHASE_YET = -2


def screening_table(n_sensors: int, cusum_k: float) -> np.ndarray:
    """Critical statistics per number of tests ``n`` (columns): the value at which each test's
    p-value equals ``1 / n``, shrunk slightly so a skipped test is clearly >= 1 / n.

    Row 0: two-sided normal |z|; row 1: CUSUM statistic; row ``2 + dof``: chi-square d2 under the
    Wilson-Hilferty approximation the kernel uses.
    """
    from scipy.stats import norm

    n_max = 4 * n_sensors + 1
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
def start(d, j, cnt, ew, rb, cs, sq, wb, wph, cg, pg, cc, cprev, cring, P) -> None:
    """The reading that filled sensor ``j``'s warm-up buffer: learn the sensor from it."""
    W = cnt[d, j, 0]
    b = wb[d, j, :W]
    q = sq[d, j]
    cnt[d, j, 1] = 0
    cs[d, j, 0] = 0.0
    cs[d, j, 1] = 0.0
    if q[Q.KIND] == Q.KIND_NEW:
        if P[COUNTERS] > 0.0 and Q.is_counter(b):
            q[Q.KIND] = Q.KIND_COUNTER          # learn again, on its increments
            cnt[d, j, 0] = 0
            return
        q[Q.KIND] = Q.KIND_RAW
    lo = b[0]
    hi = b[0]
    repeats = 0
    for k in range(1, W):
        if b[k] < lo:
            lo = b[k]
        if b[k] > hi:
            hi = b[k]
        if abs(b[k] - b[k - 1]) <= Q.tolerance(b[k]):
            repeats += 1
    q[Q.SAME] = (repeats + 1.0) / (W + 1.0)
    ew[d, j, 0] = 0.0
    ew[d, j, 1] = 0.0
    for k in range(W):
        ewma.learn(ew[d, j], b[k], ewma.cold_start(P[ALPHA], k))
    if hi - lo <= Q.tolerance(hi):
        q[Q.CONST] = 1.0                        # never moved: nothing to score yet
        return
    med = np.median(b)
    rb[d, j, 0] = med                           # robust centre; the scale is the larger of the
    mad = np.median(np.abs(b - med))            # MAD and the standard deviation's equivalent
    sd_mad = math.sqrt(ew[d, j, 1]) / robust.MAD_TO_SD
    rb[d, j, 1] = mad if mad > sd_mad else sd_mad
    span = hi - lo
    q[Q.LO] = lo
    q[Q.SPAN] = span
    cg[d, j] = 0
    pg[d, j] = 0
    cc[d, j] = 0.0
    cring[d, j] = 0.0
    cprev[d, j] = -1
    n_bins = int(P[CTX_BINS])
    slots = int(P[PH_SLOTS])
    for k in range(W):                          # the warm-up's transitions are known
        C.step(cg[d, j], cprev[d, j], b[k], lo, span, n_bins, int(P[CTX_PAD]))
        if 0 <= wph[d, j, k] < slots:
            C.phase_step(pg[d, j], wph[d, j, k], b[k], lo, span, n_bins, int(P[PH_PAD]))


@njit(inline="always", **SERIAL)
def rebaseline_sensor(d, j, cnt, cs, sq) -> None:
    """Learn sensor ``j`` of device ``d`` afresh from its next readings (a new normal); what the
    sensor is (resolution, kind, repeat share) is kept."""
    cnt[d, j, 0] = 0
    cnt[d, j, 1] = 0
    cs[d, j, 0] = 0.0
    cs[d, j, 1] = 0.0
    sq[d, j, Q.CONST] = 0.0


@njit(inline="always", **SERIAL)
def phase_of(t: float, P) -> int:
    """Slot of the period for time ``t`` (seconds since the epoch); -1 without a time."""
    slots = int(P[PH_SLOTS])
    if slots <= 0 or math.isnan(t):
        return -1
    period = P[PH_PERIOD]
    slot = int(math.floor((t % period) / period * slots))
    return slot if slot < slots else slots - 1


# Rows of the per-row work array ``scratch[N_SCRATCH, S]``: clipped z, the Mahalanobis product,
# scored and learned (1) / scored, gated (2) / started after the row (-1) / neither (0), and the
# learned sensors' state before this row (to undo the step if the row is flagged).
ZC, MV_Y, SCORED, OLD_EW0, OLD_EW1, OLD_RB0, OLD_RB1, OLD_SAME, OLD_CNT1 = 0, 1, 2, 3, 4, 5, 6, 7, 8
N_SCRATCH = 9


@njit(**SERIAL)
def update_row(i, d, X, t, ex, ew, rb, cs, cnt, dev, sq, wb, wph, cg, pg, cc, cprev, cring, Rinv, mv_ready, P, crit,
               scratch, z_out, fused_out, flag_out, acc_out, zc_out, stuck_out, ctx_out):
    """Score, fuse and learn row ``i`` of device ``d``; ``scratch`` is an ``(N_SCRATCH, S)`` work array.

    Outputs per row: robust z, fused score, flag, accepted (warm and unflagged), the clipped
    z-vector of accepted rows (zeros otherwise) for the per-model correlation, stuck sensors
    and the context score. Returns True when a sensor's warm-up buffer filled: the caller then
    runs ``starts_after_row`` with the same ``scratch``.

    Speed: the per-sensor loops index the state arrays element by element and keep each
    sensor's state in local variables. An array view (``ew[d, j]``) costs a reference-count
    call pair in Numba, and the calls also keep the compiler from holding values in registers;
    views are only taken on rare paths (context channel, warm-up start). The serial row loop
    inlines it (``update_row_inlined``): a call per row passes some 30 array descriptors."""
    S = X.shape[1]
    warmup = P[WARMUP]
    clip = P[CLIP]
    eps_abs = P[EPS_ABS]
    eps_rel = P[EPS_REL]
    res_floor = P[RES_FLOOR]
    interval = P[INTERVAL]
    stuck_p = P[STUCK_P]
    cusum_k = P[CUSUM_K]
    use_z = P[USE_Z] > 0.0
    use_ctx = P[USE_CTX] > 0.0
    learn_clip = P[LEARN_CLIP]
    relearn = P[RELEARN]
    has_ex = ex.shape[0] > 0                   # no exceedance input: an empty (0, S) array

    # Nominal steps since this device's previous reading (1 when timestamps are not used).
    steps = 1.0
    ti = t[i]
    if not math.isnan(ti):
        last = dev[d, 1]
        if interval > 0.0 and not math.isnan(last):
            steps = (ti - last) / interval
            if steps < 0.0:
                steps = 0.0
            elif steps > P[MAX_GAP]:
                steps = P[MAX_GAP]
        if math.isnan(last) or ti > last:
            dev[d, 1] = ti
    dev[d, 0] += 1.0
    a_e = ewma.decay(P[ALPHA], steps)
    a_r = ewma.decay(P[ROBUST_LR], steps)
    phase = NO_PHASE_YET                       # slot of the period: computed on first use

    # 0. what the sensor is; warm-up; 1. score
    pending_start = False
    n_present = 0
    n_ex = 0
    n_ctx = 0
    ctx_max = 0.0
    zmax_e = 0.0
    zmax_r = 0.0
    smax = 0.0
    p_ex = 1.0
    for j in range(S):
        x = X[i, j]
        scratch[ZC, j] = 0.0
        scratch[SCORED, j] = 0.0
        z_out[i, j] = np.nan
        stuck_out[i, j] = False
        if math.isnan(x):
            if cnt[d, j, 0] >= warmup:
                for k in range(cprev.shape[2]):   # a gap breaks the chain of contexts
                    cprev[d, j, k] = -1
            continue
        v, same = Q.observe(sq, d, j, x, ti, interval)
        if math.isnan(v):
            continue
        n = cnt[d, j, 0]
        if n < warmup:
            wb[d, j, n] = v
            if phase == NO_PHASE_YET:
                phase = phase_of(ti, P)
            wph[d, j, n] = phase
            cnt[d, j, 0] = n + 1
            if n + 1 >= warmup:
                scratch[SCORED, j] = -1.0        # buffer full: started after this row
                pending_start = True
            continue
        mean = ew[d, j, 0]
        if sq[d, j, Q.CONST] > 0.0:
            if abs(v - mean) > Q.tolerance(v):   # it moved: learn it afresh
                sq[d, j, Q.CONST] = 0.0
                wb[d, j, 0] = v
                if phase == NO_PHASE_YET:
                    phase = phase_of(ti, P)
                wph[d, j, 0] = phase
                cnt[d, j, 0] = 1
            continue
        if use_ctx:
            if phase == NO_PHASE_YET:
                phase = phase_of(ti, P)
            c = C.novelty_one(v, phase, int(P[PH_SLOTS]), cg[d, j], cprev[d, j], pg[d, j], sq[d, j, Q.LO],
                              sq[d, j, Q.SPAN], int(P[CTX_BINS]), int(P[CTX_PAD]), int(P[PH_PAD]), P[CTX_REFRACTORY],
                              P[CTX_MIN_S], P[CTX_PRIOR], P[PH_WEIGHT], cc[d, j], cring[d, j])
            n_ctx += 1
            if c > ctx_max:
                ctx_max = c
        if Q.stuck(sq, d, j, stuck_p):
            stuck_out[i, j] = True
            continue
        scratch[SCORED, j] = 1.0
        step_floor = res_floor * sq[d, j, Q.RES]
        se = Q.floor(math.sqrt(ew[d, j, 1]) + eps_abs + eps_rel * abs(mean), step_floor)
        ze = (v - mean) / se
        centre = rb[d, j, 0]
        sr = Q.floor(robust.scale_of(centre, rb[d, j, 1], eps_abs, eps_rel), step_floor)
        zr = (v - centre) / sr
        e = ex[i, j] if has_ex else np.nan
        if not math.isnan(e) and use_z:
            n_ex += 1
            pe = 10.0 ** (-abs(e))
            if pe < p_ex:
                p_ex = pe
            ze_ex = math.copysign(math.sqrt(2.0 * math.log(10.0) * abs(e)), e)
            if abs(ze_ex) > abs(zr):
                zr = ze_ex                        # report the stronger evidence (attribution)
        z_out[i, j] = zr
        n_present += 1
        if abs(ze) > zmax_e:
            zmax_e = abs(ze)
        if abs(zr) > zmax_r:
            zmax_r = abs(zr)
        cz = zr
        if cz > clip:
            cz = clip
        elif cz < -clip:
            cz = -clip
        scratch[ZC, j] = cz
        up, lo = cusum.stepped(cs[d, j, 0], cs[d, j, 1], cz, cusum_k)
        cs[d, j, 0] = up
        cs[d, j, 1] = lo
        s = up if up > lo else lo
        if s > smax:
            smax = s

        # 3. learn the z detectors, in the same pass: a gated sensor (|z| > learn_clip) is not
        # learned from whatever the row's verdict; any other sensor is learned now and the step
        # is undone below if the row turns out flagged (rare), so its state is touched once.
        if abs(zr) > learn_clip:
            scratch[SCORED, j] = 2.0
            gated = cnt[d, j, 1] + 1
            cnt[d, j, 1] = gated
            if relearn > 0.0 and gated >= relearn:
                rebaseline_sensor(d, j, cnt, cs, sq)   # a lasting new level: learn it afresh
            continue
        n = cnt[d, j, 0]
        scratch[OLD_CNT1, j] = cnt[d, j, 1]
        cnt[d, j, 1] = 0
        cnt[d, j, 0] = n + 1
        var = ew[d, j, 1]
        scratch[OLD_EW0, j] = mean
        scratch[OLD_EW1, j] = var
        mean, var = ewma.moved(mean, var, v, ewma.cold_start(a_e, n))
        ew[d, j, 0] = mean
        ew[d, j, 1] = var
        mad = rb[d, j, 1]
        scratch[OLD_RB0, j] = centre
        scratch[OLD_RB1, j] = mad
        centre, mad = robust.stepped(centre, mad, v, a_r * sr)
        rb[d, j, 0] = centre
        rb[d, j, 1] = mad
        same_share = sq[d, j, Q.SAME]
        scratch[OLD_SAME, j] = same_share
        sq[d, j, Q.SAME] = same_share + a_e * ((1.0 if same else 0.0) - same_share)

    # 2. fuse
    fused = np.nan
    if n_present > 0 and use_z:
        # Screening: ``crit`` holds, per number of tests, the statistic below which a test's
        # p-value is >= 1 / n_tests (it then cannot make the fused score non-zero), so the tail
        # functions only run for rows that stand out. Exact: the skipped p-values are never the
        # minimum that matters.
        n_tests = 3 * n_present + n_ex
        use_mv = P[USE_MV] > 0.0 and mv_ready and n_present >= 2
        if use_mv:
            n_tests += 1
        p_min = p_ex
        zmax = zmax_e if zmax_e > zmax_r else zmax_r
        if zmax > crit[0, n_tests]:
            p = normal_two_sided(zmax)
            if p < p_min:
                p_min = p
        if smax > crit[1, n_tests]:
            p = cusum_tail(smax, cusum_k)
            if p < p_min:
                p_min = p
        if use_mv:
            # d2 <= P[MV_TOP] |zc|^2, so the product is only formed when that bound (with a
            # margin far above rounding) passes the screen; exact like the screens above.
            crit_mv = crit[2 + n_present, n_tests]
            zz = 0.0
            for j in range(S):
                zz += scratch[ZC, j] * scratch[ZC, j]
            d2 = 0.0
            if P[MV_TOP] * zz * (1.0 + MV_MARGIN) + MV_MARGIN > crit_mv:
                d2 = quad_form(Rinv, scratch[ZC], scratch[MV_Y])
            if d2 > crit_mv:
                p = chi2_upper(d2, n_present)
                if p < p_min:
                    p_min = p
        fused = fuse(p_min, float(n_tests), P[SCALE])
    if n_ctx > 0 and (math.isnan(fused) or ctx_max > fused):
        fused = ctx_max
    ctx_out[i] = ctx_max if n_ctx > 0 else np.nan
    raw_flag = False
    if not math.isnan(fused):
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
        zc_out[i, j] = scratch[ZC, j] if acc else 0.0

    # 3. a flagged row teaches the z detectors nothing: undo the steps learned above
    if raw_flag:
        for j in range(S):
            if scratch[SCORED, j] != 1.0:
                continue
            ew[d, j, 0] = scratch[OLD_EW0, j]
            ew[d, j, 1] = scratch[OLD_EW1, j]
            rb[d, j, 0] = scratch[OLD_RB0, j]
            rb[d, j, 1] = scratch[OLD_RB1, j]
            sq[d, j, Q.SAME] = scratch[OLD_SAME, j]
            cnt[d, j, 0] -= 1
            gated = np.int64(scratch[OLD_CNT1, j]) + 1
            cnt[d, j, 1] = gated
            if relearn > 0.0 and gated >= relearn:
                rebaseline_sensor(d, j, cnt, cs, sq)
    return pending_start


# The same function inlined at Numba's level into the serial row loop (the single-core path:
# +5-9 %); the threaded loop calls it (inlined there, its compile took a minute longer).
update_row_inlined = njit(inline="always", **SERIAL)(update_row.py_func)


@njit(**SERIAL)
def starts_after_row(d, scored, cnt, ew, rb, cs, sq, wb, wph, cg, pg, cc, cprev, cring, P) -> None:
    """Start the sensors whose warm-up buffer the row filled (``scored[j] == -1``; called by the
    row loops, outside ``update_row``, which stays lean)."""
    for j in range(scored.shape[0]):
        if scored[j] == -1.0:
            start(d, j, cnt, ew, rb, cs, sq, wb, wph, cg, pg, cc, cprev, cring, P)


@njit(**PARALLEL)
def update_rows(order, starts, dev_idx, X, t, ex, ew, rb, cs, cnt, dev, sq, wb, wph, cg, pg, cc, cprev, cring, Rinv,
                mv_ready, P, crit, n_chunks, z_out, fused_out, flag_out, acc_out, zc_out, stuck_out, ctx_out):
    """Process every row; ``order[starts[g]:starts[g+1]]`` are the rows of one device, in order."""
    S = X.shape[1]
    n_groups = starts.shape[0] - 1
    for c in prange(n_chunks):
        scratch = np.empty((N_SCRATCH, S))
        g0 = c * n_groups // n_chunks
        g1 = (c + 1) * n_groups // n_chunks
        for g in range(g0, g1):
            for k in range(starts[g], starts[g + 1]):
                i = order[k]
                if update_row(i, dev_idx[i], X, t, ex, ew, rb, cs, cnt, dev, sq, wb, wph, cg, pg, cc, cprev, cring,
                              Rinv, mv_ready, P, crit, scratch, z_out, fused_out, flag_out, acc_out, zc_out, stuck_out,
                              ctx_out):
                    starts_after_row(dev_idx[i], scratch[SCORED], cnt, ew, rb, cs, sq, wb, wph, cg, pg, cc, cprev, cring, P)


@njit(**SERIAL)
def update_rows_serial(dev_idx, X, t, ex, ew, rb, cs, cnt, dev, sq, wb, wph, cg, pg, cc, cprev, cring, Rinv, mv_ready, P,
                       crit, z_out, fused_out, flag_out, acc_out, zc_out, stuck_out, ctx_out):
    """The same in plain row order on one thread (no grouping needed)."""
    scratch = np.empty((N_SCRATCH, X.shape[1]))
    for i in range(X.shape[0]):
        if update_row_inlined(i, dev_idx[i], X, t, ex, ew, rb, cs, cnt, dev, sq, wb, wph, cg, pg, cc, cprev, cring,
                              Rinv, mv_ready, P, crit, scratch, z_out, fused_out, flag_out, acc_out, zc_out, stuck_out,
                              ctx_out):
            starts_after_row(dev_idx[i], scratch[SCORED], cnt, ew, rb, cs, sq, wb, wph, cg, pg, cc, cprev, cring, P)
