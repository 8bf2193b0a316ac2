"""FleetDetector: every streaming detector over every device of one product model.

The online detection service keeps one ``FleetDetector`` per product model (sensor counts
differ between models) and feeds it rows as they are read from the telemetry table::

    det = FleetDetector(n_sensors=3, config=FleetConfig(warmup=20))
    det.ensure_devices(2)
    res = det.update_rows(dev_idx, X)          # X float64[n, s], NaN = missing
    res.z, res.fused, res.flag
    blob = det.to_bytes(); det = FleetDetector.from_bytes(blob)   # exact continuation

Per (device, sensor) it learns what the sensor is (its resolution, how often it repeats itself,
whether it is a counter; ``detection.kernels.sensor``) and runs an EWMA z-score, a streaming
median/MAD z-score, a two-sided CUSUM (every scale floored by the resolution) and context
novelty (a transition between levels, or a level at this time of day, never seen before;
``detection.kernels.context``); per product model a Mahalanobis distance over the devices'
standardised deviations. The z part of the fused score is the Bonferroni-adjusted smallest
tail probability on a log scale (``-log10(p_adj) / fused_scale``, so the default threshold 0.5
means p_adj <= 1e-6); the fused score is the larger of that and the context score. Flagged rows
are not learned by the z detectors, so a slow fault cannot become the new normal; a sustained
new normal is learned afresh when the service says so (:meth:`FleetDetector.rebaseline`: a
planner's false alarm, a change of duty) or after a repair (:meth:`FleetDetector.reset_devices`).
A stuck sensor is reported in ``FleetResult.stuck`` (a sensor fault) and scores nothing.

This is the detector set of the product: the service runs it with each product model's
``FleetConfig`` and ``benchmarks.nab`` runs it with ``detection.nab.detectors.NAB_CONFIG``.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> det = FleetDetector(n_sensors=3, config=FleetConfig(warmup=20))
>>> det.ensure_devices(2)
>>> dev = np.tile(np.array([0, 1]), 200)
>>> X = rng.normal(size=(400, 3))
>>> X[-1, 2] = 12.0                       # device 1, sensor 2 jumps on the last row
>>> res = det.update_rows(dev, X)
>>> bool(np.isnan(res.fused[:38]).all()), bool(res.flag[-1]), int(np.argmax(np.abs(res.z[-1])))
(True, True, 2)
>>> det2 = FleetDetector.from_bytes(det.to_bytes())
>>> Y = rng.normal(size=(10, 3)); d = np.zeros(10, dtype=np.int64)
>>> np.array_equal(det.update_rows(d, Y).fused, det2.update_rows(d, Y).fused)
True
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, fields

import numba
import numpy as np

from detection.kernels import context as C
from detection.kernels import fleet as K
from detection.kernels import reference
from detection.kernels import sensor as Q
from detection.kernels.mahalanobis import inverse_correlation, top_eigenvalue, update_comoment

FORMAT_VERSION = 2


@dataclass(frozen=True)
class FleetConfig:
    """Parameters of the detector set (one set per product model).

    alpha: EWMA weight per nominal step (memory ~ 1/alpha readings).
    robust_lr: step of the streaming median/MAD, in scale units per reading.
    cusum_k: CUSUM allowance (shifts smaller than ~2k scale units are ignored).
    clip: |z| clip for CUSUM and Mahalanobis inputs (one spike cannot dominate them).
    learn_clip: a sensor whose robust |z| exceeds this is not learned from.
    warmup: readings per device-sensor learned before scores are emitted (NaN before).
    threshold: ``flag = fused >= threshold``.
    fused_scale: decades of adjusted p-value that map to fused = 1.
    eps_abs, eps_rel: floors on every scale (absolute, and relative to the level).
    interval_s: nominal reading interval; with timestamps, decay follows elapsed time.
    max_gap_steps: cap on the steps one gap counts for.
    refractory: readings after a flag during which the device's fused score is multiplied by
        ``suppress`` and no flag is raised (alarm de-duplication; 0 = off).
    relearn: after this many consecutive unlearned readings a sensor starts over (0 = never:
        a lasting fault stays flagged until the service resets the device).
    mahalanobis: use the per-model Mahalanobis detector (needs >= 2 sensors).
    mv_alpha: co-moment weight per accepted row; mv_min_weight: weight before it is used;
    mv_ridge: shrinkage of the correlation toward identity.
    zscore: the z tests (EWMA, MAD, CUSUM, Mahalanobis, exceedances) count in the fused score
        (they are computed, and reported in ``z``, either way).
    context: run the context-novelty channel; ctx_bins levels over the warm-up range, ctx_tiles
        offset tilings, levels clamped ctx_pad beyond the range, ctx_window readings whose
        surprise (decades) must sum to ctx_min_surprise, ctx_prior_n the prior of the novelty
        share, ctx_refractory readings of quiet per sensor after a context alarm.
    phase_slots: slots of phase_period (a day) for the (time of day, level) channel (0: off),
        levels clamped phase_pad beyond the range, weight phase_weight.
    res_floor: every scale is at least this many resolution steps of the sensor.
    stuck_p: a run of repeated readings less likely than this (under the sensor's own repeat
        share) is a stuck sensor (0: off).
    counters: a sensor that only rises during its warm-up is scored on its increments.
    """

    alpha: float = 0.01
    robust_lr: float = 0.01
    cusum_k: float = 0.5
    clip: float = 6.0
    learn_clip: float = 4.0
    warmup: int = 50
    threshold: float = 0.5
    fused_scale: float = 12.0
    eps_abs: float = 1e-9
    eps_rel: float = 1e-4
    interval_s: float = 0.0
    max_gap_steps: float = 1000.0
    refractory: int = 0
    suppress: float = 0.0
    relearn: int = 0
    mahalanobis: bool = True
    mv_alpha: float = 0.001
    mv_min_weight: float = 0.5
    mv_ridge: float = 0.05
    zscore: bool = True
    context: bool = True
    ctx_bins: int = 12
    ctx_tiles: int = 2
    ctx_pad: int = 48
    ctx_window: int = 30
    ctx_min_surprise: float = 4.0
    ctx_prior_n: float = 10.0
    ctx_refractory: int = 0
    phase_slots: int = 24
    phase_period: float = 86400.0
    phase_pad: int = 4
    phase_weight: float = 0.7
    res_floor: float = 2.0
    stuck_p: float = 1e-6
    counters: bool = True

    def __post_init__(self) -> None:
        checks = {
            "alpha": 0.0 < self.alpha <= 1.0,
            "robust_lr": 0.0 < self.robust_lr <= 1.0,
            "cusum_k": self.cusum_k > 0.0,
            "clip": self.clip > 0.0,
            "learn_clip": self.learn_clip > 0.0,
            "warmup": self.warmup >= 2,
            "threshold": 0.0 <= self.threshold <= 1.0,
            "fused_scale": self.fused_scale > 0.0,
            "eps_abs": self.eps_abs > 0.0,
            "eps_rel": self.eps_rel >= 0.0,
            "interval_s": self.interval_s >= 0.0,
            "max_gap_steps": self.max_gap_steps > 0.0,
            "refractory": self.refractory >= 0,
            "suppress": 0.0 <= self.suppress <= 1.0,
            "relearn": self.relearn >= 0,
            "mv_alpha": 0.0 < self.mv_alpha <= 1.0,
            "mv_min_weight": 0.0 <= self.mv_min_weight <= 1.0,
            "mv_ridge": 0.0 < self.mv_ridge <= 1.0,
            "ctx_bins": self.ctx_bins >= 2,
            "ctx_tiles": 1 <= self.ctx_tiles <= 8,
            "ctx_pad": self.ctx_pad >= 0,
            "ctx_window": self.ctx_window >= 1,
            "ctx_min_surprise": self.ctx_min_surprise >= 0.0,
            "ctx_prior_n": self.ctx_prior_n >= 1.0,
            "ctx_refractory": self.ctx_refractory >= 0,
            "phase_slots": self.phase_slots >= 0,
            "phase_period": self.phase_period > 0.0,
            "phase_pad": self.phase_pad >= 0,
            "phase_weight": self.phase_weight >= 0.0,
            "res_floor": self.res_floor >= 0.0,
            "stuck_p": 0.0 <= self.stuck_p < 1.0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid FleetConfig value(s): {', '.join(f'{n}={getattr(self, n)!r}' for n in bad)}")

    def params(self) -> np.ndarray:
        """The kernel's parameter vector (indices in detection.kernels.fleet)."""
        P = np.zeros(K.N_PARAMS)
        P[K.ALPHA], P[K.ROBUST_LR], P[K.CUSUM_K] = self.alpha, self.robust_lr, self.cusum_k
        P[K.CLIP], P[K.LEARN_CLIP], P[K.WARMUP] = self.clip, self.learn_clip, self.warmup
        P[K.THRESHOLD], P[K.SCALE] = self.threshold, self.fused_scale
        P[K.EPS_ABS], P[K.EPS_REL] = self.eps_abs, self.eps_rel
        P[K.INTERVAL], P[K.MAX_GAP] = self.interval_s, self.max_gap_steps
        P[K.REFRACTORY], P[K.SUPPRESS], P[K.RELEARN] = self.refractory, self.suppress, self.relearn
        P[K.USE_MV] = 1.0 if self.mahalanobis else 0.0
        P[K.USE_Z], P[K.USE_CTX] = float(self.zscore), float(self.context)
        P[K.CTX_BINS], P[K.CTX_PAD], P[K.CTX_MIN_S] = self.ctx_bins, self.ctx_pad, self.ctx_min_surprise
        P[K.CTX_PRIOR], P[K.CTX_REFRACTORY] = self.ctx_prior_n, self.ctx_refractory
        P[K.PH_SLOTS], P[K.PH_PERIOD], P[K.PH_PAD], P[K.PH_WEIGHT] = (self.phase_slots, self.phase_period,
                                                                    self.phase_pad, self.phase_weight)
        P[K.RES_FLOOR], P[K.STUCK_P], P[K.COUNTERS] = self.res_floor, self.stuck_p, float(self.counters)
        return P

    def grid_words(self) -> tuple[int, int]:
        """uint64 words per tiling of the transition grid and of the phase grid."""
        g = self.ctx_bins + 2 * self.ctx_pad + 1
        return C.words(g * g), C.words(self.phase_slots * (self.ctx_bins + 2 * self.phase_pad + 1))

    @classmethod
    def from_dict(cls, d: dict) -> FleetConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown FleetConfig field(s): {sorted(unknown)}")
        return cls(**d)


@dataclass
class FleetResult:
    """Per-row output of :meth:`FleetDetector.update_rows` (rows in input order)."""

    z: np.ndarray       # float64[n, s] signed robust z per sensor (NaN: missing or warming up)
    fused: np.ndarray   # float64[n] fused score in [0, 1] (NaN while warming up)
    flag: np.ndarray    # bool[n] fused >= threshold (never during the refractory period)
    stuck: np.ndarray | None = None   # bool[n, s] the sensor is stuck (a sensor fault)
    ctx: np.ndarray | None = None     # float64[n] context score (NaN: no sensor warm)


#: Largest work array (elements) a detector keeps between batches (32 MB).
_ZC_KEEP = 1 << 22

_STATE = ("ew", "rb", "cs", "cnt", "dev", "sq", "wb", "wph", "cg", "pg", "cc", "cprev", "cring")


def _cold(config: FleetConfig, n: int, s: int) -> dict:
    """State arrays of ``n`` cold devices."""
    cw, pw = config.grid_words()
    T = config.ctx_tiles
    dev = np.zeros((n, 3))
    dev[:, 1] = np.nan
    return {"ew": np.zeros((n, s, 2)), "rb": np.zeros((n, s, 2)), "cs": np.zeros((n, s, 2)),
            "cnt": np.zeros((n, s, 2), dtype=np.int64), "dev": dev, "sq": Q.new_state(n, s),
            "wb": np.zeros((n, s, config.warmup)), "wph": np.full((n, s, config.warmup), -1, dtype=np.int64),
            "cg": np.zeros((n, s, cw, T), dtype=np.uint64), "pg": np.zeros((n, s, pw, T), dtype=np.uint64),
            "cc": np.zeros((n, s, C.N_COUNTERS)), "cprev": np.full((n, s, T), -1, dtype=np.int64),
            "cring": np.zeros((n, s, config.ctx_window))}


class FleetDetector:
    """All detectors for all devices of one product model; see the module docstring."""

    def __init__(self, n_sensors: int, config: FleetConfig | None = None, capacity: int = 0):
        if int(n_sensors) < 1:
            raise ValueError(f"n_sensors must be >= 1, got {n_sensors!r}")
        self.n_sensors = int(n_sensors)
        self.config = config or FleetConfig()
        self._P = self.config.params()
        self._crit = K.screening_table(self.n_sensors, self.config.cusum_k)
        s = self.n_sensors
        self.n_devices = 0
        for k, a in _cold(self.config, 0, s).items():
            setattr(self, k, a)
        self.comoment = np.zeros((s, s))
        self.mv_weight = 0.0
        self.rinv = np.eye(s)
        self._rinv_top = None                        # the Rinv whose top eigenvalue is in _P
        self._zc = np.empty((0, s))
        if capacity:
            self.ensure_devices(capacity)

    # ---- devices -------------------------------------------------------------------------
    def ensure_devices(self, n: int) -> None:
        """Grow the state to at least ``n`` device rows; new rows start cold.

        Storage grows geometrically, so adding devices one at a time stays linear overall."""
        n = int(n)
        if n <= self.n_devices:
            return
        capacity = self.ew.shape[0]
        if n > capacity:
            extra = max(n, 2 * capacity) - capacity
            for k, a in _cold(self.config, extra, self.n_sensors).items():
                setattr(self, k, np.concatenate([getattr(self, k), a]))
        self.n_devices = n

    def reset_devices(self, dev_idx) -> None:
        """Make devices cold again (after a repair or a replacement the old normal is gone,
        and the sensors may be new)."""
        idx = self._check_idx(np.atleast_1d(np.asarray(dev_idx)))
        for k, a in _cold(self.config, len(idx), self.n_sensors).items():
            getattr(self, k)[idx] = a

    def rebaseline(self, dev_idx, sensors=None) -> None:
        """Learn a sustained new normal: the devices' sensors (all, or the indices ``sensors``)
        warm up again from their next readings (a planner's false alarm, a confirmed change of
        duty). What each sensor is (resolution, counter, repeat share) is kept."""
        idx = self._check_idx(np.atleast_1d(np.asarray(dev_idx)))
        cols = np.arange(self.n_sensors) if sensors is None else np.atleast_1d(np.asarray(sensors, dtype=np.int64))
        if cols.size and (cols.min() < 0 or cols.max() >= self.n_sensors):
            raise ValueError(f"sensor index out of range [0, {self.n_sensors}): {cols.tolist()}")
        sel = np.ix_(idx, cols)
        self.cnt[sel] = 0
        self.cs[sel] = 0.0
        self.sq[sel + (Q.CONST,)] = 0.0
        self.dev[idx, 2] = 0.0

    # ---- streaming -----------------------------------------------------------------------
    def update_rows(self, dev_idx, X, t=None, *, ex=None, threads: bool = True, engine: str = "numba") -> FleetResult:
        """Score then learn rows; rows of one device are processed in the given order.

        dev_idx: int[n] device rows (< n_devices); X: float[n, n_sensors], NaN = missing;
        t: optional float[n] timestamps in seconds since the epoch (used with
        ``config.interval_s`` so that gaps and irregular sampling weigh by elapsed time, and for
        the time-of-day channel); ex: optional float[n, n_sensors] exceedance evidence of fast
        streams (signed decades of p-value, NaN = none; ``detection.kernels.resample``).
        ``threads=False`` runs serially;
        ``engine="numpy"`` runs the NumPy reference instead of the Numba kernel (tests, benchmarks).
        """
        if engine not in ("numba", "numpy"):
            raise ValueError(f"engine must be 'numba' or 'numpy', got {engine!r}")
        dev_idx, X, t, ex = self._check_rows(dev_idx, X, t, ex)
        n = X.shape[0]
        s = self.n_sensors
        z, zc = np.empty((n, s)), self._zc_buffer(n)
        fused, ctx = np.empty(n), np.empty(n)
        flag, acc = np.empty(n, dtype=np.bool_), np.empty(n, dtype=np.bool_)
        stuck = np.empty((n, s), dtype=np.bool_)
        mv_ready = self.mv_weight >= self.config.mv_min_weight
        if mv_ready and self._rinv_top is not self.rinv:   # refreshed, restored or replaced
            self._P[K.MV_TOP] = top_eigenvalue(self.rinv)
            self._rinv_top = self.rinv
        args = (*(getattr(self, k) for k in _STATE), self.rinv, mv_ready, self._P)
        out = (z, fused, flag, acc, zc, stuck, ctx)
        crit = self._crit
        if n == 0:
            pass
        elif engine == "numpy":
            ex = np.full(X.shape, np.nan) if ex.shape[0] == 0 else ex
            z, fused, flag, acc, zc, stuck, ctx = reference.update_rows(dev_idx, X, t, ex, *args)
        elif threads and numba.get_num_threads() > 1 and n > 256:
            order = np.argsort(dev_idx, kind="stable")
            ds = dev_idx[order]
            starts = np.flatnonzero(np.concatenate(([True], ds[1:] != ds[:-1], [True])))
            n_chunks = min(len(starts) - 1, 8 * numba.get_num_threads())
            K.update_rows(order, starts, dev_idx, X, t, ex, *args, crit, n_chunks, *out)
        else:
            K.update_rows_serial(dev_idx, X, t, ex, *args, crit, *out)
        self._learn_correlation(zc, acc)
        return FleetResult(z=z, fused=fused, flag=flag, stuck=stuck, ctx=ctx)

    def _zc_buffer(self, n: int) -> np.ndarray:
        """Work array for the clipped z-vectors of a batch of ``n`` rows, kept between batches:
        a fresh one would cost a page fault per 4 KiB on every batch of the service's size."""
        if self._zc.shape[0] >= n:
            return self._zc[:n]
        buf = np.empty((n, self.n_sensors))
        if buf.size <= _ZC_KEEP:
            self._zc = buf
        return buf

    def _learn_correlation(self, zc: np.ndarray, acc: np.ndarray) -> None:
        """Fold the clipped z-vectors of accepted rows (other rows are zeros) into the model's
        correlation and refresh its inverse (once per batch)."""
        if not self.config.mahalanobis or self.n_sensors < 2:
            return
        n_acc = int(np.count_nonzero(acc))
        if n_acc == 0:
            return
        self.comoment, self.mv_weight = update_comoment(self.comoment, self.mv_weight, zc, self.config.mv_alpha, n_acc)
        if self.mv_weight >= self.config.mv_min_weight:
            self.rinv = inverse_correlation(self.comoment / self.mv_weight, self.config.mv_ridge)

    # ---- validation ----------------------------------------------------------------------
    def _check_idx(self, dev_idx: np.ndarray) -> np.ndarray:
        if dev_idx.ndim != 1 or not np.issubdtype(dev_idx.dtype, np.integer):
            raise ValueError(f"dev_idx must be a 1-D integer array, got {dev_idx.dtype} {dev_idx.shape}")
        if dev_idx.size and (dev_idx.min() < 0 or dev_idx.max() >= self.n_devices):
            raise ValueError(
                f"dev_idx out of range [0, {self.n_devices}); call ensure_devices() first "
                f"(got min {dev_idx.min()}, max {dev_idx.max()})"
            )
        return dev_idx.astype(np.int64, copy=False)

    def _check_rows(self, dev_idx, X, t, ex=None):
        dev_idx = self._check_idx(np.asarray(dev_idx))
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_sensors:
            raise ValueError(f"X must have shape (n, {self.n_sensors}), got {X.shape}")
        if X.shape[0] != dev_idx.shape[0]:
            raise ValueError(f"dev_idx has {dev_idx.shape[0]} rows but X has {X.shape[0]}")
        if np.isinf(X).any():
            raise ValueError("X contains +/-inf; use NaN for a missing reading")
        if t is None:
            t = np.full(X.shape[0], np.nan)
        else:
            t = np.ascontiguousarray(t, dtype=np.float64)
            if t.shape != (X.shape[0],):
                raise ValueError(f"t must have shape ({X.shape[0]},), got {t.shape}")
        if ex is None:
            ex = np.empty((0, X.shape[1]))       # none (the kernel reads NaN)
        else:
            ex = np.ascontiguousarray(ex, dtype=np.float64)
            if ex.shape != X.shape:
                raise ValueError(f"ex must have the shape of X {X.shape}, got {ex.shape}")
        return dev_idx, X, t, ex

    # ---- checkpoint ----------------------------------------------------------------------
    def copy(self) -> FleetDetector:
        """An independent detector in the same state (cheaper than a bytes round trip)."""
        det = FleetDetector(self.n_sensors, self.config)
        for k in (*_STATE, "comoment", "rinv"):
            setattr(det, k, getattr(self, k).copy())
        det.n_devices, det.mv_weight = self.n_devices, self.mv_weight
        return det

    def to_bytes(self) -> bytes:
        """Serialise config and state (NumPy .npz, no pickle) for an exact restart."""
        meta = {"format": FORMAT_VERSION, "n_sensors": self.n_sensors, "mv_weight": self.mv_weight,
                "config": asdict(self.config)}
        buf = io.BytesIO()
        np.savez(buf, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                 comoment=self.comoment, rinv=self.rinv, **{k: getattr(self, k)[: self.n_devices] for k in _STATE})
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> FleetDetector:
        """Restore a detector written by :meth:`to_bytes`."""
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
            meta = json.loads(arrays.pop("meta").tobytes())
        except Exception as exc:  # noqa: BLE001 - any decoding failure is a bad checkpoint
            raise ValueError(f"not a FleetDetector checkpoint: {exc}") from exc
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported FleetDetector checkpoint format {meta.get('format')!r}")
        det = cls(meta["n_sensors"], FleetConfig.from_dict(meta["config"]))
        for k in _STATE:
            setattr(det, k, np.ascontiguousarray(arrays[k]))
        det.n_devices = det.dev.shape[0]
        det.comoment = arrays["comoment"]
        det.rinv = np.ascontiguousarray(arrays["rinv"])
        det.mv_weight = float(meta["mv_weight"])
        return det
