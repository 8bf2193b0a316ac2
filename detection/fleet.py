"""FleetDetector: every streaming detector over every device of one product model.

The online detection service keeps one ``FleetDetector`` per product model (sensor counts
differ between models) and feeds it rows as they are read from the telemetry table::

    det = FleetDetector(n_sensors=3, config=FleetConfig(warmup=20))
    det.ensure_devices(2)
    res = det.update_rows(dev_idx, X)          # X float64[n, s], NaN = missing
    res.z, res.fused, res.flag
    blob = det.to_bytes(); det = FleetDetector.from_bytes(blob)   # exact continuation

Per (device, sensor) it runs an EWMA z-score, a streaming median/MAD z-score and a two-sided
CUSUM; per product model a Mahalanobis distance over the devices' standardised deviations; the
fused score in [0, 1] is the Bonferroni-adjusted smallest tail probability on a log scale
(``fused = -log10(p_adj) / fused_scale``, so the default threshold 0.5 means p_adj <= 1e-6).
Flagged rows are never learned, so a slow fault cannot become the new normal.

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

from detection.kernels import fleet as K
from detection.kernels import reference
from detection.kernels.mahalanobis import inverse_correlation, update_comoment

FORMAT_VERSION = 1


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
        return P

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


_STATE = ("ew", "rb", "cs", "cnt", "dev")


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
        self.ew = np.zeros((0, s, 2))
        self.rb = np.zeros((0, s, 2))
        self.cs = np.zeros((0, s, 2))
        self.cnt = np.zeros((0, s, 2), dtype=np.int64)
        self.dev = np.zeros((0, 3))
        self.comoment = np.zeros((s, s))
        self.mv_weight = 0.0
        self.rinv = np.eye(s)
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
            s = self.n_sensors
            self.ew = np.concatenate([self.ew, np.zeros((extra, s, 2))])
            self.rb = np.concatenate([self.rb, np.zeros((extra, s, 2))])
            self.cs = np.concatenate([self.cs, np.zeros((extra, s, 2))])
            self.cnt = np.concatenate([self.cnt, np.zeros((extra, s, 2), dtype=np.int64)])
            dev = np.zeros((extra, 3))
            dev[:, 1] = np.nan
            self.dev = np.concatenate([self.dev, dev])
        self.n_devices = n

    def reset_devices(self, dev_idx) -> None:
        """Make devices cold again (after a repair or a replacement the old normal is gone)."""
        idx = self._check_idx(np.atleast_1d(np.asarray(dev_idx)))
        for arr in (self.ew, self.rb, self.cs, self.cnt):
            arr[idx] = 0
        self.dev[idx] = (0.0, np.nan, 0.0)

    # ---- streaming -----------------------------------------------------------------------
    def update_rows(self, dev_idx, X, t=None, *, threads: bool = True, engine: str = "numba") -> FleetResult:
        """Score then learn rows; rows of one device are processed in the given order.

        dev_idx: int[n] device rows (< n_devices); X: float[n, n_sensors], NaN = missing;
        t: optional float[n] timestamps in seconds (used with ``config.interval_s`` so that
        gaps and irregular sampling weigh by elapsed time). ``threads=False`` runs serially;
        ``engine="numpy"`` runs the NumPy reference instead of the Numba kernel (tests, benchmarks).
        """
        if engine not in ("numba", "numpy"):
            raise ValueError(f"engine must be 'numba' or 'numpy', got {engine!r}")
        dev_idx, X, t = self._check_rows(dev_idx, X, t)
        n = X.shape[0]
        z = np.empty((n, self.n_sensors))
        fused = np.empty(n)
        flag = np.empty(n, dtype=np.bool_)
        acc = np.empty(n, dtype=np.bool_)
        zc = np.empty((n, self.n_sensors))
        mv_ready = self.mv_weight >= self.config.mv_min_weight
        args = (self.ew, self.rb, self.cs, self.cnt, self.dev, self.rinv, mv_ready, self._P)
        crit = self._crit
        if n == 0:
            pass
        elif engine == "numpy":
            z, fused, flag, acc, zc = reference.update_rows(dev_idx, X, t, *args)
        elif threads and numba.get_num_threads() > 1 and n > 256:
            order = np.argsort(dev_idx, kind="stable")
            ds = dev_idx[order]
            starts = np.flatnonzero(np.concatenate(([True], ds[1:] != ds[:-1], [True])))
            n_chunks = min(len(starts) - 1, 8 * numba.get_num_threads())
            K.update_rows(order, starts, dev_idx, X, t, *args, crit, n_chunks, z, fused, flag, acc, zc)
        else:
            K.update_rows_serial(dev_idx, X, t, *args, crit, z, fused, flag, acc, zc)
        self._learn_correlation(zc, acc)
        return FleetResult(z=z, fused=fused, flag=flag)

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

    def _check_rows(self, dev_idx, X, t):
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
        return dev_idx, X, t

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
