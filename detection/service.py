"""The online detection service (``prognos detect``).

Each step reads newly committed telemetry through ingest's outbox (exactly once), and per
product model: removes what the operating regime explains (condition normaliser), summarises
devices that report faster than the detectors' unit of time per bucket of that unit (the newest
reading as the level, plus an exceedance test over every reading in the bucket, so spikes
between kept readings count; ``detection.kernels.resample``; a device reporting every 10
minutes passes through), updates
the streaming detectors (:class:`detection.fleet.FleetDetector`), attributes anomalies to failure
modes (evidence kernel), records anomaly episodes and asset health, and opens or refreshes one
predictive service order per asset and failure mode when the evidence for that mode reaches
the risk threshold; for a product model with a learned order rule (``order_rules``, chosen by
``prognos train``), the prediction pass also opens one when the rule fires on the failure
predictor's p_fail in the asset's current life. Failures recorded in ``downtime`` open
corrective orders; repairs complete live orders of their mode and make the asset's detectors start over (the old normal is gone),
each at its own time in the stream. A planner's false alarm (``orders.feedback.false_alarms``)
re-baselines the sensors that mode moves on that asset and clears its evidence: the current
readings become the new normal (``FleetDetector.rebaseline``); a planner's confirmed change of
duty (``orders.duty``) does the same for every sensor and mode of the asset (both read through
``orders.feedback.rebaselines``). A stuck sensor is recorded as an
anomaly of detector ``stuck`` (a sensor fault) and scores nothing. State is checkpointed to ``detector_checkpoints`` in the
same transaction as the step's writes, so a restarted service continues exactly.
"""

from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone

import numpy as np
import psycopg

from detection.catalog import Catalog, ModelInfo
from detection.fleet import FleetConfig, FleetDetector
from detection.kernels.evidence import evidence_update, mode_weights
from detection.kernels.lagged import lagged_ema
from detection.kernels.resample import bucket_samples, compatible, new_state
from detection import levels as alarm_levels
from detection.mttr import MttrCache, predicted_mttr
from detection.prediction import order_rules
from detection.prediction.history import recent_window, recent_windows
from detection.orders import priority, respond_by
from detection.reader import OutboxReader
from orders.feedback import rebaselines
from orders.sla import sweep as sla_sweep
from orders.state import OrderProposal, complete_repaired, new_repairs, open_or_update, refresh_predictions
from detection.regime import ConditionNormalizer
from prognos.config import Settings
from prognos.logs import event

log = logging.getLogger("prognos.detect")
CHECKPOINT = "detection-service"
#: hours of predictions an order rule looks over after a gap between prediction passes (at most)
RULE_CATCHUP_H = 168
UTC = timezone.utc


@dataclass(frozen=True)
class ServiceConfig:
    """Parameters of the service.

    How each default was chosen: the failure-mode signatures are not here (``prognos train``
    learns them from the platform's history, :mod:`detection.signatures`). ``tau_h``,
    ``rate_full``, ``rate_full_intermittent``, ``min_mode_score``, ``risk_threshold``,
    ``settle_h``, ``episode_gap`` and the detector's ``warmup``/``alpha``/``robust_lr`` were tuned
    by hand, one change at a time, on the lead-time benchmark's fleet of seed 11 (120-500 assets,
    2026-11); they are frozen since, and ``benchmarks.lead_time`` scores only fleets of other
    seeds (101-103 by default, with signatures learned on seed 1), so its figures are out of
    sample for them. ``prognos train`` now learns ``tau_h``, ``min_mode_score`` and each mode's
    order level (``risk_threshold x rate_full*``) per product model from the platform's history
    (:mod:`detection.levels`); these defaults are the fallback for a model or mode with too few
    failures behind it (the manufacturer-safe levels). ``history_days``, ``history_rows``, ``min_fit_rows``, ``lag_taus_s`` follow
    the simulated products' daily and weekly cycles and thermal time constants (minutes to
    hours); ``predict_every_h`` is the predictor's resolution (hourly means); the ``*_every_s``
    are operational. ``risk_threshold`` defaults to ``settings.risk_order_threshold`` in the
    service (0.9).

    tau_h: memory of the failure-mode evidence. rate_full: share of recent readings attributed
    to a mode that means risk 1 (``rate_full_intermittent`` for modes that show as spikes).
    risk_threshold: risk that opens a predictive order. min_mode_score: matched-filter score an
    anomaly needs to be attributed to a mode. history_days, history_rows, min_fit_rows: history
    used to fit the condition normalisers (at most ``history_rows`` rows, every k-th reading of
    each device so that they span ``history_days``). lag_taus_s: time constants of the lagged conditions.
    episode_gap: unflagged readings that end an anomaly episode. settle_h: after a repair,
    readings are neither scored nor learned for this long (the machine settles into its new
    normal), and none while the asset is down after a failure. ``detector.interval_s`` is the
    detectors' unit of time: faster devices are summarised per unit (``detection.kernels.resample``).
    ``detector`` is the product model's detector-set configuration (the same ``FleetConfig``
    ``benchmarks.nab`` runs as ``NAB_CONFIG``). The simulated product models' residuals are white
    noise, on which the context channel raises false alarms in its first weeks (measured in
    benchmarks/RESULTS.md, robust section), so their configuration runs the z tests only
    (``context=False``); a model with smooth telemetry turns it on. ``detector.max_gap_steps = 1``: a reading
    (a bucket of a fast device) counts as one unit of the detectors' memory however long after
    the previous one it comes, so a device reporting once a day is scored as one reporting every
    10 minutes (chosen from the principle, checked in ``tests/test_real_telemetry.py``: with
    elapsed time counted a daily reading weighed 144 units, the detectors forgot half of their
    baseline every day and flagged nearly every reading of a steady sensor; devices reporting
    every 10 minutes or faster are unaffected but after a gap in their readings).
    predict_every_h: stream time between two predictions of an asset's time to failure, and
    predict_every_s wall time between two prediction passes (a replay or an accelerated clock
    does not spend its steps predicting).
    mttr_refit_s: the repair-time model (:mod:`detection.mttr`) is refitted from the repairs
    when the stored one is older than this (wall seconds); mttr_alpha: its interval on an
    order covers 1 - mttr_alpha.
    learned_levels: use the alarm levels ``prognos train`` learned per product model
    (:mod:`detection.levels`: the evidence memory, the mode score and each mode's order level,
    replacing ``tau_h``, ``min_mode_score`` and ``rate_full*`` where enough failures are behind
    them); False runs the hand-tuned defaults above (for comparison)."""

    tau_h: float = 24.0
    rate_full: float = 0.5
    rate_full_intermittent: float = 0.15
    min_mode_score: float = 3.0
    risk_threshold: float = 0.9
    history_days: float = 7.0
    history_rows: int = 200_000
    min_fit_rows: int = 2_000
    lag_taus_s: tuple = (900.0, 3600.0, 14400.0)
    settle_h: float = 12.0
    episode_gap: int = 12
    predict_every_h: float = 1.0
    predict_every_s: float = 30.0
    checkpoint_every_s: float = 30.0
    catalog_every_s: float = 30.0
    sla_every_s: float = 60.0        # SLA warnings/breaches (orders.sla.sweep) on the stream's clock
    mttr_refit_s: float = 3600.0
    mttr_alpha: float = 0.2
    learned_levels: bool = True
    detector: FleetConfig = field(default_factory=lambda: FleetConfig(warmup=144, alpha=0.005, robust_lr=0.005,
                                                                      interval_s=600.0, max_gap_steps=1.0,
                                                                      context=False))


#: Weight of a new gap in a device's typical gap between readings (bucket samples).
BUCKET_GAP_ALPHA = 0.2


class ModelState:
    """Everything the service keeps per product model."""

    def __init__(self, info: ModelInfo, config: ServiceConfig):
        self.info = info
        self.det = FleetDetector(len(info.sensors), config.detector)
        self.norm: ConditionNormalizer | None = None
        self.devices: list[str] = []
        self.index: dict[str, int] = {}
        m = len(info.modes)
        self.rate = np.zeros((0, m))
        self.last_t = np.zeros(0)
        self.ordered = np.zeros((0, m), dtype=bool)
        self.calm = np.zeros(0, dtype=np.int64)      # unflagged readings since the last flag
        self.stuck = np.zeros((0, len(info.sensors)), dtype=bool)   # sensors stuck at their last reading
        self.weights, self.absolute = mode_weights(info.signature, info.absolute)
        self.config = config
        self.adopt_levels(None)
        self.buffer: list[tuple] = []     # rows held until the normaliser is fitted
        self.taus = np.asarray(config.lag_taus_s, dtype=np.float64)
        self.ema = np.zeros((0, len(info.condition_sensors), len(self.taus)))
        self.ema_t = np.zeros(0)
        self.quiet_until = np.zeros(0)         # epoch seconds; rows before are not assessed
        self.bucket_s = float(config.detector.interval_s)
        self.res_floor = float(config.detector.res_floor)
        self.buckets = new_state(0, len(info.sensors))   # decimation of fast devices

    def adopt_signatures(self, info: ModelInfo) -> None:
        """Take a refreshed catalog's failure-mode signatures (learned by ``prognos train``);
        the detectors' state is kept. Only when the model's modes and sensors are unchanged."""
        if info.modes != self.info.modes or info.sensors != self.info.sensors:
            return
        if not (np.array_equal(info.signature, self.info.signature)
                and np.array_equal(info.absolute, self.info.absolute)):
            self.weights, self.absolute = mode_weights(info.signature, info.absolute)
            event(log, "signatures_adopted", model=info.model_id, learned=int(info.learned.sum()))
        self.info = info

    def adopt_levels(self, stored) -> None:
        """The alarm levels in force: learned ones (``detection.levels.Levels``) or the defaults."""
        self.tau_h, self.min_mode_score, self.rate_full = alarm_levels.resolve(self.info, self.config, stored)

    @property
    def needs_normalizer(self) -> bool:
        return self.norm is None and bool(self.info.modes) and bool(self.info.condition_sensors)

    def lagged(self, idx: np.ndarray, X: np.ndarray, ts: np.ndarray, ema=None, ema_t=None) -> np.ndarray:
        """Lagged condition features of the rows (updates the devices' averages)."""
        cond = self.info.condition_sensors
        return lagged_ema(idx, ts, np.ascontiguousarray(X[:, cond]), self.taus,
                          self.ema if ema is None else ema, self.ema_t if ema_t is None else ema_t)

    def fit_normalizer(self, devices, X: np.ndarray, ts: np.ndarray, *, keep_state: bool) -> None:
        """Fit on rows in time order; ``keep_state``: the rows are history, so the devices'
        lagged averages continue from them (otherwise they are processed again afterwards)."""
        idx = self.rows_for(list(devices))
        ema, ema_t = self.ema.copy(), self.ema_t.copy()
        lagged = self.lagged(idx, X, ts, ema, ema_t)
        self.norm = ConditionNormalizer(self.info.condition_sensors).fit(X, lagged)
        if keep_state:
            self.ema, self.ema_t = ema, ema_t
        event(log, "normaliser_fitted", model=self.info.model_id, rows=len(X))

    def rows_for(self, device_ids) -> np.ndarray:
        new = [d for d in dict.fromkeys(device_ids) if d not in self.index]
        for d in new:
            self.index[d] = len(self.devices)
            self.devices.append(d)
        if new:
            n, m = len(self.devices), len(self.info.modes)
            grow = n - self.rate.shape[0]
            self.rate = np.vstack([self.rate, np.zeros((grow, m))])
            self.last_t = np.concatenate([self.last_t, np.full(grow, np.nan)])
            self.ordered = np.vstack([self.ordered, np.zeros((grow, m), dtype=bool)])
            self.calm = np.concatenate([self.calm, np.full(grow, 10**9, dtype=np.int64)])
            self.stuck = np.vstack([self.stuck, np.zeros((grow, len(self.info.sensors)), dtype=bool)])
            self.ema = np.concatenate([self.ema, np.full((grow,) + self.ema.shape[1:], np.nan)])
            self.ema_t = np.concatenate([self.ema_t, np.full(grow, np.nan)])
            self.quiet_until = np.concatenate([self.quiet_until, np.full(grow, -np.inf)])
            self.buckets = tuple(np.concatenate([a, b]) for a, b in
                                 zip(self.buckets, new_state(grow, len(self.info.sensors))))
            self.det.ensure_devices(n)
        return np.fromiter((self.index[d] for d in device_ids), dtype=np.int64, count=len(device_ids))

    def bucket(self, idx: np.ndarray, X: np.ndarray, ts: np.ndarray) -> tuple:
        """The rows as the detectors take them: per device, one row per bucket of the
        detectors' unit of time (unchanged for devices reporting that often or less), and the
        bucket summaries' exceedance evidence: ``(idx, ts, X, ex)``."""
        return bucket_samples(idx, ts, np.ascontiguousarray(X, dtype=np.float64), self.bucket_s,
                              BUCKET_GAP_ALPHA, self.res_floor, *self.buckets)

    def reset(self, device_id: str, quiet_until: float = -np.inf) -> None:
        i = self.index.get(device_id)
        if i is None:
            return
        _, has, vals = self.buckets[:3]
        has[i], vals[i] = False, np.nan                  # a pending bucket of the old state
        self.buckets[-1][i] = new_state(1, len(self.info.sensors))[-1][0]   # the sensors' raw bands
        self.quiet_until[i] = quiet_until
        self.det.reset_devices([i])
        self.rate[i] = 0.0
        self.last_t[i] = np.nan
        self.ordered[i] = False
        self.calm[i] = 10**9

    def rebaseline(self, device_id: str, mode: str | None) -> None:
        """A planner's false alarm: the sensors ``mode`` moves (all, if none is known) learn the
        device's current readings as the new normal, and the mode's evidence starts over.
        ``mode=None`` (a confirmed change of duty): every sensor and every mode."""
        i = self.index.get(device_id)
        if i is None or (mode is not None and mode not in self.info.modes):
            return
        m = slice(None) if mode is None else self.info.modes.index(mode)
        cols = np.flatnonzero(np.asarray(self.info.mode_mask)[m]) if mode is not None else []
        if not len(cols):                  # a change of duty, or a mode that names no sensor
            cols = np.arange(len(self.info.sensors))
        self.det.rebaseline([i], cols)
        self.buckets[-1][i, cols] = new_state(1, len(cols))[-1][0]   # the sensors' raw bands too
        self.rate[i, m] = 0.0
        self.ordered[i, m] = False

    # -- checkpoint ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        buf = io.BytesIO()
        np.savez(buf, rate=self.rate, last_t=self.last_t, ordered=self.ordered, calm=self.calm, stuck=self.stuck,
                 ema=self.ema, ema_t=self.ema_t, quiet_until=self.quiet_until,
                 **{f"bucket_{k}": a for k, a in enumerate(self.buckets)},
                 norm=self.norm.coef_ if self.norm is not None else np.zeros((0, 0)),
                 on=self.norm.on_ if self.norm is not None else np.zeros(0))
        return {"devices": self.devices, "det": self.det.to_bytes().hex(), "arrays": buf.getvalue().hex(),
                "condition": self.norm.condition if self.norm is not None else None,
                "buffer": [(list(d), X.tolist(), t.tolist()) for d, X, t in self.buffer]}

    def load_dict(self, d: dict) -> None:
        self.devices = list(d["devices"])
        self.index = {dev: i for i, dev in enumerate(self.devices)}
        try:
            self.det = FleetDetector.from_bytes(bytes.fromhex(d["det"]))
        except ValueError as exc:          # a checkpoint of an older detector set: warm up again
            event(log, "detector_state_discarded", model=self.info.model_id, reason=str(exc))
            self.det = FleetDetector(len(self.info.sensors), self.det.config)
            self.det.ensure_devices(len(self.devices))
        with np.load(io.BytesIO(bytes.fromhex(d["arrays"]))) as f:
            self.rate, self.last_t, self.ordered, self.calm = f["rate"], f["last_t"], f["ordered"], f["calm"]
            self.stuck = f["stuck"] if "stuck" in f.files else np.zeros((len(self.devices), len(self.info.sensors)), bool)
            self.ema, self.ema_t, self.quiet_until = f["ema"], f["ema_t"], f["quiet_until"]
            saved = tuple(f[f"bucket_{k}"] for k in range(len(self.buckets)) if f"bucket_{k}" in f.files)
            if f"bucket_{len(self.buckets)}" not in f.files and compatible(saved, len(self.info.sensors)):
                self.buckets = saved
            else:                          # a checkpoint from before bucket samples (or their layout)
                self.buckets = new_state(len(self.devices), len(self.info.sensors))
            if d["condition"] is not None:
                self.norm = ConditionNormalizer.restore(d["condition"], f["norm"], f["on"],
                                                        n_lagged=self.ema.shape[1] * self.ema.shape[2])
        self.buffer = [(np.array(dv, dtype=object), np.array(X, dtype=np.float64), np.array(t))
                       for dv, X, t in d.get("buffer", [])]


def _to_seconds(times: np.ndarray) -> np.ndarray:
    return times.astype("datetime64[us]").astype(np.int64) / 1e6


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


_REAL_TINY = float(np.finfo(np.float32).tiny)   # float4's smallest normal number


def as_real(values) -> list:
    """``values`` as PostgreSQL's ``real`` takes them: a magnitude below float4's smallest normal
    number is sent as 0 (evidence decays exponentially between anomalies; below ~1.4e-45 the
    server refuses the value as an underflow, which stopped the service). None stays NULL.

    >>> as_real([1e-300, -1e-50, 0.25, None])
    [0.0, 0.0, 0.25, None]
    """
    return [0.0 if v is not None and abs(v) < _REAL_TINY else v for v in values]


class DetectionService:
    def __init__(self, settings: Settings, config: ServiceConfig | None = None, *, predictor_loader=None,
                 name: str = CHECKPOINT):
        self.name = name
        self.settings = settings
        self.config = config or ServiceConfig(risk_threshold=settings.risk_order_threshold)
        self.conn = psycopg.connect(settings.dsn)
        self.reader = OutboxReader()
        self.models: dict[str, ModelState] = {}
        self.repair_position = 0
        # last position handled per re-baseline source (orders.feedback.rebaselines): false_alarm =
        # service_order_history id, duty_change = duty_changes id
        self.rebaseline_position = {"false_alarm": 0, "duty_change": 0}
        # Repairs and failures apply at their own time in the stream: (time, kind, payload)
        self.pending: list[tuple] = []
        self.downtime_position = 0
        self.stream_time = 0.0
        self._catalog_at = self._checkpoint_at = self._sla_at = 0.0
        self.catalog: Catalog | None = None
        self.mttr: MttrCache | None = None
        self.predictor_loader = predictor_loader
        self.observer = None        # called with (model_id, state, idx, ts, result) per scored chunk
        self.levels: dict = {}      # model_id -> learned alarm levels (detection.levels)
        self._predictors: dict = {}
        self._rules: dict = {}      # model_id -> (stored order rule or None, monotonic time read)
        self._predicted_at: dict[str, float] = {}    # device -> stream time of its last prediction
        self._predict_wall = -np.inf                   # monotonic time of the last prediction pass

    # -- start-up ------------------------------------------------------------------------
    def start(self, *, from_start: bool = False) -> None:
        self._refresh_catalog(force=True)
        row = self.conn.execute("SELECT position, state FROM detector_checkpoints WHERE name = %s",
                                (self.name,)).fetchone()
        if row:
            self._restore(row[0], bytes(row[1]))
            event(log, "restored", position=self.reader.position)
        else:
            if not from_start:
                self.reader.position = OutboxReader.head(self.conn)
                self.repair_position = self.conn.execute("SELECT coalesce(max(id), 0) FROM repairs").fetchone()[0]
                self.rebaseline_position = {
                    "false_alarm": self.conn.execute("SELECT coalesce(max(id), 0) FROM service_order_history").fetchone()[0],
                    "duty_change": self.conn.execute("SELECT coalesce(max(id), 0) FROM duty_changes").fetchone()[0]}
                self.downtime_position = self.conn.execute("SELECT coalesce(max(id), 0) FROM downtime").fetchone()[0]
            self._fit_normalizers()
        self.conn.commit()
        self._warm_up()
        event(log, "detection_started", position=self.reader.position)

    def _fit_normalizers(self, first: datetime | None = None) -> None:
        """Fit each model's condition normaliser on the history before ``first`` (default: the
        first pending batch)."""
        first = first or self.conn.execute("SELECT min(min_time) FROM ingest_batches WHERE batch_id > %s",
                                           (self.reader.position,)).fetchone()[0] or datetime.now(UTC)
        for model_id, info in self.catalog.models.items():
            if not info.condition_sensors:
                continue
            newest = self.conn.execute(
                """SELECT max(t.time) FROM telemetry t JOIN devices d USING (device_id)
                   JOIN assets a USING (asset_id) WHERE a.model_id = %s AND t.time < %s""",
                (model_id, first)).fetchone()[0]
            if newest is None:
                continue            # no history: the model's first rows fit it (see _process)
            # every k-th reading of each device, so that the fit spans the whole history (daily
            # and weekly cycles) however often the devices report
            rows = self.conn.execute(
                """SELECT device_id, time, vals FROM (
                       SELECT t.device_id, t.time, t.vals,
                              row_number() OVER (PARTITION BY t.device_id ORDER BY t.time DESC) AS k,
                              count(*) OVER () AS n
                       FROM telemetry t JOIN devices d USING (device_id) JOIN assets a USING (asset_id)
                       WHERE a.model_id = %(model)s AND t.time < %(first)s AND t.time >= %(since)s) h
                   WHERE (k - 1) %% greatest(1, ceil(n::float8 / %(rows)s))::int = 0
                   ORDER BY time DESC LIMIT %(rows)s""",
                {"model": model_id, "first": first, "rows": self.config.history_rows,
                 "since": newest - timedelta(days=self.config.history_days)}).fetchall()
            if len(rows) >= self.config.min_fit_rows:
                rows.reverse()                                 # oldest first
                X = self._matrix([r[2] for r in rows], len(info.sensors))
                ts = np.array([r[1].timestamp() for r in rows])
                self._model(model_id).fit_normalizer([r[0] for r in rows], X, ts, keep_state=True)

    def _warm_up(self) -> None:
        """Compile the kernels now rather than on the first live step."""
        det = FleetDetector(2, self.config.detector)
        det.ensure_devices(1)
        det.update_rows(np.zeros(1, np.int64), np.zeros((1, 2)))
        evidence_update(np.zeros(1, np.int64), np.zeros(1), np.zeros((1, 2)), np.zeros(1, bool),
                        np.ones((1, 2)), np.zeros(1, bool), np.zeros((1, 1)), np.full(1, np.nan), 1.0, 1.0)

    def _model(self, model_id: str) -> ModelState:
        if model_id not in self.models:
            self.models[model_id] = ModelState(self.catalog.models[model_id], self.config)
            self.models[model_id].adopt_levels(self.levels.get(model_id))
        return self.models[model_id]

    def _refresh_catalog(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._catalog_at > self.config.catalog_every_s:
            self.catalog = Catalog.load(self.conn)
            if self.mttr is None:
                self.mttr = MttrCache(self.conn, check_every_s=self.config.catalog_every_s,
                                      refit_every_s=self.config.mttr_refit_s)
            self.mttr.model                     # refits when the stored model is older than an hour
            self.levels = alarm_levels.load(self.conn) if self.config.learned_levels else {}
            for model_id, st in self.models.items():        # newly learned signatures apply at once
                if model_id in self.catalog.models:
                    st.adopt_signatures(self.catalog.models[model_id])
                    st.adopt_levels(self.levels.get(model_id))
            self._catalog_at = now

    @staticmethod
    def _matrix(vals, n_sensors: int) -> np.ndarray:
        """Rows of values (an array as the outbox reader gives them, or per-row lists with None)
        as a float matrix of the model's ``n_sensors`` positions, NaN where missing."""
        if isinstance(vals, np.ndarray):
            X = np.full((len(vals), n_sensors), np.nan)
            k = min(n_sensors, vals.shape[1])
            X[:, :k] = vals[:, :k]
            return X
        try:                                   # the common case: every row has every position
            X = np.array(vals, dtype=np.float64)
            if X.ndim == 2 and X.shape[1] == n_sensors:
                return X
        except (ValueError, TypeError):
            pass
        X = np.full((len(vals), n_sensors), np.nan)
        for i, v in enumerate(vals):
            k = min(len(v), n_sensors)
            X[i, :k] = [np.nan if x is None else x for x in v[:k]]
        return X

    # -- the step ------------------------------------------------------------------------
    def step(self) -> dict:
        """Process what has been committed since the last step; return counts."""
        t0 = time.monotonic()
        self._refresh_catalog()
        self._collect_events()
        self._rebaseline()
        batch = self.reader.read(self.conn)
        stats = {"readings": 0, "anomalies": 0, "orders_opened": 0, "corrective": 0, "repairs": 0}
        anomalies: list[tuple] = []
        health: dict[tuple[str, str], tuple] = {}
        with self.conn.transaction():
            if batch is not None and len(batch.device_ids):
                stats["readings"] = len(batch.device_ids)
                self._stream(batch, stats, anomalies, health)
            self._apply_events(self.stream_time, stats)
            self._write_anomalies(anomalies)
            self._write_health(health)
            self._refresh_predictions()
            stats["anomalies"] = len(anomalies)
            if self.stream_time > 0 and time.monotonic() - self._sla_at > self.config.sla_every_s:
                stats["sla_events"] = sum(sla_sweep(self.conn, _dt(self.stream_time)).values())
                self._sla_at = time.monotonic()
            if time.monotonic() - self._checkpoint_at > self.config.checkpoint_every_s:
                self.checkpoint(commit=False)
        self.conn.commit()
        stats["seconds"] = round(time.monotonic() - t0, 3)
        if batch is not None and batch.committed_at is not None:
            # commit to assessed: from ingest's commit of the oldest batch read to this step's commit
            stats["commit_to_assessed_s"] = round((datetime.now(UTC) - batch.committed_at).total_seconds(), 3)
        if stats["readings"] or stats["orders_opened"] or stats["repairs"] or stats["corrective"]:
            event(log, "step", position=self.reader.position, **stats)
        return stats

    def _stream(self, batch, stats, anomalies, health, *, write: bool = True) -> None:
        """The batch's rows in time order, each repair and failure applied at its time in the
        stream; ``write=False`` (a replay of history, :mod:`detection.levels`) opens and closes
        no order."""
        t_s = _to_seconds(batch.times)
        cuts = sorted({e[0] for e in self.pending if e[0] <= t_s[-1]})
        lo = 0
        for cut in cuts + [np.inf]:
            hi = int(np.searchsorted(t_s, cut, side="left")) if np.isfinite(cut) else len(t_s)
            proposals: list[OrderProposal] = []
            if hi > lo:
                self._process(batch, t_s, lo, hi, proposals, anomalies, health)
            if write:
                stats["orders_opened"] += len(open_or_update(self.conn, proposals))
            lo = hi
            if np.isfinite(cut):
                self._apply_events(cut, stats, write=write)
        self.stream_time = max(self.stream_time, float(t_s[-1]))

    def _process(self, batch, t_s, lo, hi, proposals, anomalies, health) -> None:
        cat = self.catalog
        model_of = {d: cat.asset_model[a] for d in dict.fromkeys(batch.device_ids[lo:hi].tolist())
                    if (a := cat.device_asset.get(d)) is not None}
        models = np.array([model_of.get(d) for d in batch.device_ids[lo:hi].tolist()], dtype=object)
        cfg = self.config
        for model_id in dict.fromkeys(model_of.values()):
            st = self._model(model_id)
            rows = lo + np.flatnonzero(models == model_id)
            devs = batch.device_ids[rows]
            X = self._matrix(batch.vals[rows] if isinstance(batch.vals, np.ndarray) else [batch.vals[i] for i in rows],
                             len(st.info.sensors))
            ts = t_s[rows]
            if st.needs_normalizer:         # no history to fit on: hold rows until there is enough
                st.buffer.append((devs, X, ts))
                if sum(len(b[1]) for b in st.buffer) < cfg.min_fit_rows:
                    continue
                devs, X, ts = (np.concatenate([b[i] for b in st.buffer]) for i in range(3))
                st.buffer = []
                st.fit_normalizer(devs, X, ts, keep_state=False)
            idx = st.rows_for(list(devs))
            if st.info.condition_sensors:
                lagged = st.lagged(idx, X, ts)
            if st.norm is not None:
                X = st.norm.transform(X, lagged)
            if st.info.modes:
                X[:, st.info.condition_sensors] = np.nan   # regime inputs, not health signals
            X[ts < st.quiet_until[idx]] = np.nan           # down, or settling after a repair
            idx, ts, X, ex = st.bucket(idx, X, ts)
            if not len(idx):
                continue
            devs = np.asarray(st.devices, dtype=object)[idx]
            res = st.det.update_rows(idx, X, ts, ex=ex)
            self._stuck(st, idx, res, ts, devs, anomalies)
            if not st.info.modes:
                continue
            if self.observer is not None:
                self.observer(model_id, st, idx, ts, res)
            ev = evidence_update(idx, ts, res.z, res.flag, st.weights, st.absolute, st.rate, st.last_t,
                                 st.tau_h * 3600.0, st.min_mode_score)
            risk = np.minimum(ev / st.rate_full, 1.0)
            self._episodes(st, idx, res, ts, devs, anomalies)
            hot_rows, hot_modes = np.nonzero(risk >= cfg.risk_threshold)
            for k, m in zip(hot_rows, hot_modes):      # first crossing per device and mode opens
                d = idx[k]
                if not st.ordered[d, m]:
                    st.ordered[d, m] = True
                    proposals.append(self._proposal(self.catalog.device_asset[devs[k]], model_id,
                                                    st.info.modes[m], float(risk[k, m]), _dt(ts[k]),
                                                    "predictive", res.z[k], st.info))
            _, last_of = np.unique(idx[::-1], return_index=True)
            for k in len(idx) - 1 - last_of:
                asset = self.catalog.device_asset[devs[k]]
                for m, mode in enumerate(st.info.modes):
                    health[(asset, mode)] = (_dt(ts[k]), float(risk[k, m]), float(ev[k, m]))

    def _stuck(self, st: ModelState, idx, res, ts, devs, anomalies) -> None:
        """Record the onset of each stuck sensor (a sensor fault, detector ``stuck``)."""
        prev = st.stuck
        for k in range(len(idx)):
            d = idx[k]
            now = res.stuck[k]
            for j in np.flatnonzero(now & ~prev[d]):
                anomalies.append((_dt(ts[k]), self.catalog.device_asset[devs[k]], st.info.sensors[j], 1.0, 0.0,
                                  "stuck"))
            present = ~np.isnan(res.z[k]) | now
            prev[d] = np.where(present, now, prev[d])

    def _episodes(self, st: ModelState, idx, res, ts, devs, anomalies) -> None:
        """Record the first flagged reading of each anomaly episode (after ``episode_gap``
        unflagged readings of the same device)."""
        gap = self.config.episode_gap
        order = np.argsort(idx, kind="stable")
        sd = idx[order]
        first = np.concatenate(([True], sd[1:] != sd[:-1]))
        starts = np.flatnonzero(first)
        rank = np.empty(len(idx), dtype=np.int64)
        rank[order] = np.arange(len(idx)) - np.repeat(starts, np.diff(np.append(starts, len(idx))))
        last_flag: dict[int, int] = {}
        for k in np.flatnonzero(res.flag):
            d = idx[k]
            since = rank[k] - last_flag[d] - 1 if d in last_flag else st.calm[d] + rank[k]
            if since >= gap:
                z = np.nan_to_num(res.z[k])
                j = int(np.argmax(np.abs(z)))
                anomalies.append((_dt(ts[k]), self.catalog.device_asset[devs[k]], st.info.sensors[j],
                                  float(res.fused[k]), float(z[j]), "fused"))
            last_flag[d] = rank[k]
        counts = np.bincount(idx, minlength=len(st.calm))
        seen = counts > 0
        st.calm[seen] += counts[seen]
        for d, r in last_flag.items():
            st.calm[d] = counts[d] - 1 - r

    def _proposal(self, asset: str, model_id: str, mode: str, risk: float, at: datetime, kind: str,
                  z=None, info: ModelInfo | None = None) -> OrderProposal:
        contract = self.catalog.contract(asset, at)
        mttr, mttr_lo, mttr_hi = (predicted_mttr(self.mttr, asset, mode, alpha=self.config.mttr_alpha, kind=kind)
                                  if self.mttr else (None, None, None))
        pred = self._prediction(asset, model_id, at) if kind == "predictive" else None
        rul = 0.0 if kind != "predictive" else (pred.rul_h if pred is not None else None)
        failure_at = at + timedelta(hours=rul) if rul is not None else None
        detail = {"source": "detection"}
        if mttr is not None:
            detail["mttr"] = {"lo_h": mttr_lo, "hi_h": mttr_hi, "coverage": round(1 - self.config.mttr_alpha, 3)}
        if z is not None and info is not None:
            top = np.argsort(-np.abs(np.nan_to_num(z)))[:3]
            detail["sensors"] = {info.sensors[j]: round(float(z[j]), 2) for j in top if np.isfinite(z[j])}
        lo = hi = None
        if pred is not None:
            detail["p_fail"] = (pred.p_mode or {}).get(mode, pred.p_fail)
            if pred.rul_lo_h is not None:
                lo, hi = at + timedelta(hours=pred.rul_lo_h), at + timedelta(hours=pred.rul_hi_h)
        return OrderProposal(
            asset_id=asset, mode=mode, kind=kind, opened_at=at,
            priority=priority(contract.rank if contract else None, rul),
            sla_tier=contract.tier if contract else None, risk=round(risk, 4),
            predicted_failure_at=failure_at, predicted_mttr_h=mttr,
            respond_by=respond_by(at, contract.response_h if contract else None, failure_at, mttr),
            detail=detail, predicted_failure_lo=lo, predicted_failure_hi=hi)

    def _predictor(self, model_id: str):
        """The newest trained predictor of the product model, if any (re-checked every minute)."""
        if self.predictor_loader is None:
            return None
        pred, checked = self._predictors.get(model_id, (None, -np.inf))
        if time.monotonic() - checked > 60.0:       # pick up newly trained versions
            pred = self.predictor_loader(model_id)
            self._predictors[model_id] = (pred, time.monotonic())
        return pred

    def _prediction(self, asset: str, model_id: str, at: datetime):
        """The trained predictor's output for the asset at ``at`` (None without a predictor or data)."""
        pred = self._predictor(model_id)
        devices = self.catalog.asset_devices.get(asset)
        if pred is None or not devices:
            return None
        window = recent_window(self.conn, devices[0], at, pred.window_h, len(self.catalog.models[model_id].sensors))
        if np.isnan(window).all():
            return None
        out = pred.predict(window)
        return out if out.rul_h is not None and np.isfinite(out.rul_h) else None

    def _refresh_predictions(self) -> None:
        """Every ``predict_every_h`` of stream time, per asset of a model with a trained
        predictor: time to failure with its 10th-90th percentile interval and the probability
        of a failure of each mode within the horizon, into ``asset_health`` and the asset's
        live predictive orders."""
        if (self.predictor_loader is None or not self.stream_time
                or time.monotonic() - self._predict_wall < self.config.predict_every_s):
            return
        self._predict_wall = time.monotonic()
        at = _dt(self.stream_time)
        due_before = self.stream_time - self.config.predict_every_h * 3600.0
        health, orders, rule_orders = [], [], []
        for model_id, st in self.models.items():
            due = [d for d in st.devices if self._predicted_at.get(d, -np.inf) <= due_before]
            pred = self._predictor(model_id) if due else None
            if pred is None:
                continue
            tail = self._rule_tail(model_id, due)     # the order rule's extra rows (0: no rule)
            windows = recent_windows(self.conn, due, at, pred.window_h + tail, len(st.info.sensors))
            devs = [d for d in due if d in windows and not np.isnan(windows[d][tail:]).all()]
            for d in due:
                self._predicted_at[d] = self.stream_time
            outs = pred.predict_many([windows[d][tail:] for d in devs])
            if tail:
                rule_orders += self._rule_proposals(model_id, st, pred, devs, outs, windows, tail, at)
            for d, out in zip(devs, outs):
                asset = self.catalog.device_asset.get(d)
                if asset is None or not np.isfinite(out.rul_h):
                    continue
                for mode, p in (out.p_mode or {}).items():
                    health.append((asset, mode, out.rul_h, out.rul_lo_h, out.rul_hi_h, p, pred.horizon_h))
                iv = [None if h is None else at + timedelta(hours=h) for h in (out.rul_lo_h, out.rul_hi_h)]
                orders.append((asset, at + timedelta(hours=out.rul_h), *iv, out.p_mode))
        if health:
            cols = list(zip(*health))
            self.conn.execute(
                """INSERT INTO asset_health (asset_id, mode, updated_at, health, risk, rul_h, rul_lo_h, rul_hi_h,
                                             p_fail, horizon_h, predicted_at)
                   SELECT a, m, %s, 1, 0, r, lo, hi, p, h, %s
                   FROM unnest(%s::text[], %s::text[], %s::real[], %s::real[], %s::real[], %s::real[], %s::real[])
                        AS x(a, m, r, lo, hi, p, h)
                   ON CONFLICT (asset_id, mode) DO UPDATE SET rul_h = EXCLUDED.rul_h, rul_lo_h = EXCLUDED.rul_lo_h,
                       rul_hi_h = EXCLUDED.rul_hi_h, p_fail = EXCLUDED.p_fail, horizon_h = EXCLUDED.horizon_h,
                       predicted_at = EXCLUDED.predicted_at""",
                (at, at, *[list(c) for c in cols[:2]], *[as_real(c) for c in cols[2:]]))
        if orders:
            refresh_predictions(self.conn, orders)
            event(log, "predictions", assets=len(orders), at=at.isoformat())
        if rule_orders:
            opened = open_or_update(self.conn, rule_orders)
            event(log, "rule_orders", proposals=len(rule_orders), opened=len(opened), at=at.isoformat())

    def _order_rule(self, model_id: str):
        """The product model's stored order rule (``order_rules``), re-read every minute; None
        without one. A row that is not a valid rule is logged as an error and ignored (the
        model's orders then come from detection's evidence alone)."""
        stored, checked = self._rules.get(model_id, (None, -np.inf))
        if time.monotonic() - checked > 60.0:
            try:
                stored = order_rules.load(self.conn, model_id)
            except ValueError as exc:
                event(log, "order_rule_invalid", logging.ERROR, model=model_id, error=str(exc))
                stored = None
            self._rules[model_id] = (stored, time.monotonic())
        return stored

    def _lives(self, assets: list[str], at: datetime) -> dict[str, tuple[float, bool]]:
        """Per asset: when its current life began (epoch s of its last repair start or failure,
        as training cuts lives; -inf if none) and whether a rule order was opened since."""
        rows = self.conn.execute(
            """WITH cut AS (
                   SELECT a AS asset_id, greatest(
                       (SELECT max(started_at) FROM repairs r WHERE r.asset_id = a AND r.started_at <= %(at)s),
                       (SELECT max(started_at) FROM downtime w WHERE w.asset_id = a AND NOT w.planned
                            AND w.mode IS NOT NULL AND w.started_at <= %(at)s)) AS began
                   FROM unnest(%(assets)s::text[]) AS a)
               SELECT c.asset_id, extract(epoch FROM c.began)::float8,
                      EXISTS (SELECT 1 FROM service_orders o WHERE o.asset_id = c.asset_id AND o.kind = 'predictive'
                              AND o.detail->>'source' = 'order_rule'
                              AND (c.began IS NULL OR o.opened_at >= c.began))
               FROM cut c""", {"assets": assets, "at": at}).fetchall()
        return {a: (-np.inf if began is None else began, ordered) for a, began, ordered in rows}

    def _rule_tail(self, model_id: str, due: list[str]) -> int:
        """Hourly rows the model's stored order rule needs before the predictor's window: the
        rows since the devices' previous prediction (at most ``RULE_CATCHUP_H``) and the rule's
        rise rows; 0 without a rule. The prediction pass reads them with the window, in one query."""
        stored = self._order_rule(model_id)
        if stored is None or not due:
            return 0
        gap_h = max(self.stream_time - self._predicted_at.get(d, -np.inf) for d in due) / 3600.0  # inf: never predicted
        return int(stored.rule.rise_rows) + int(np.clip(np.ceil(gap_h), 1, RULE_CATCHUP_H))

    def _rule_proposals(self, model_id: str, st: ModelState, pred, devs: list[str], outs: list,
                        windows: dict[str, np.ndarray], tail: int, at: datetime) -> list[OrderProposal]:
        """Per asset of a model with a stored order rule (``order_rules``, chosen by ``prognos
        train``): the predictor's p_fail and remaining life on each hourly row since the asset's
        previous prediction (at most a week) and the rule's rise rows before them, within its
        current life (features from the life's rows only, as in training); when
        ``OrderRule.first_order`` (what ``benchmarks.backblaze`` orders on) picks one of them and
        this life has no rule order yet, a predictive order of the predictor's most likely mode
        (the model's single mode when it predicts none). ``windows``: each device's hourly rows,
        the ``tail`` rows of :meth:`_rule_tail` and then the predictor's window."""
        stored = self._order_rule(model_id)
        if stored is None or not devs:
            return []
        rule = stored.rule
        asset_of = {d: self.catalog.device_asset.get(d) for d in devs}
        lives = self._lives(sorted({a for a in asset_of.values() if a is not None}), at)
        todo = [d for d, a in asset_of.items() if a is not None and not lives.get(a, (0, True))[1]]
        mode_of = {d: out.mode for d, out in zip(devs, outs)}
        n = pred.window_h + tail
        rows_h = int(at.timestamp() // 3600) - n + 1 + np.arange(n)         # each window row's hour (epoch hours)
        life = {}
        for d in todo:        # the rows of the asset's current life, from its first reading (as training cuts lives)
            seen = np.flatnonzero((rows_h * 3600.0 >= lives[asset_of[d]][0]) & np.isfinite(windows[d]).any(axis=1))
            if seen.size:
                life[d] = windows[d][seen[0]:]
        # a life's predictions count once it has the trainer's min_history_h of rows (as in training)
        min_rows = max(1, round(pred.metadata.get("config", {}).get("min_history_h", 1)))
        out = []
        for d, (rul, p) in zip(life, pred.predict_histories(list(life.values()), tail=tail)):
            asset = asset_of[d]
            skip = max(0, min_rows - 1 - (len(life[d]) - len(p)))
            p, rul = p[skip:], rul[skip:]
            row = rule.first_order(p, rul) if len(p) else None
            if row is None:
                continue
            mode = mode_of.get(d) or (st.info.modes[0] if len(st.info.modes) == 1 else None)
            if mode is None:
                event(log, "rule_order_without_mode", logging.WARNING, asset=asset, model=model_id)
                continue
            p_row, rul_row = float(p[row]), float(rul[row])
            prop = self._proposal(asset, model_id, mode, p_row, at, "predictive")
            out.append(replace(prop, detail=prop.detail | {
                "source": "order_rule", "p_fail": round(p_row, 4), "rul_h": round(rul_row, 1),
                "horizon_h": pred.horizon_h, "rule": stored.name,
                "note": f"predicted p_fail {p_row:.2f} within {pred.horizon_h:g} h (time to failure {rul_row:.0f} h), "
                        f"rule: {rule.describe('h')}"}))
        return out

    # -- repairs, failures -----------------------------------------------------------------
    def _collect_events(self) -> None:
        """Queue newly recorded repairs and failures; they apply at their time in the stream."""
        for rid, asset, mode, finished, ftf in new_repairs(self.conn, self.repair_position):
            self.pending.append((finished.timestamp(), "repair", [rid, asset, mode, ftf]))
            self.repair_position = rid
        for did, asset, mode, started in self.conn.execute(
                "SELECT id, asset_id, mode, started_at FROM downtime WHERE id > %s AND NOT planned "
                "AND mode IS NOT NULL ORDER BY id", (self.downtime_position,)).fetchall():
            self.pending.append((started.timestamp(), "failure", [did, asset, mode]))
            self.downtime_position = did
        self.pending.sort(key=lambda e: (e[0], e[1]))

    def _rebaseline(self) -> None:
        """Planners' false alarms (that asset and mode) and confirmed changes of duty (every
        sensor of the asset) since the last step: re-baseline."""
        for rb in rebaselines(self.conn, self.rebaseline_position):
            self.rebaseline_position[rb.source] = max(self.rebaseline_position.get(rb.source, 0), rb.id)
            st = self.models.get(self.catalog.asset_model.get(rb.asset_id))
            if st is None:
                continue
            for d in self.catalog.asset_devices.get(rb.asset_id, []):
                st.rebaseline(d, rb.mode)
            event(log, "rebaselined", asset=rb.asset_id, mode=rb.mode, reason=rb.source, id=rb.id)

    def _apply_events(self, upto: float, stats: dict, *, write: bool = True) -> None:
        keep, corrective = [], []
        for ts, kind, payload in self.pending:
            if ts > upto:
                keep.append((ts, kind, payload))
                continue
            if kind == "failure":
                _, asset, mode = payload
                model_id = self.catalog.asset_model.get(asset)
                if model_id is not None and write:
                    corrective.append(self._proposal(asset, model_id, mode, 1.0, _dt(ts), "corrective"))
                if model_id is not None:
                    self._quiet(asset, np.inf)            # down until repaired
                stats["corrective"] += 1
            else:
                rid, asset, mode, _ = payload
                if write:
                    complete_repaired(self.conn, rid, asset, mode, _dt(ts))
                self._reset_asset(asset, ts + self.config.settle_h * 3600.0)
                stats["repairs"] += 1
        open_or_update(self.conn, corrective)
        self.pending = keep

    def _reset_asset(self, asset: str, quiet_until: float) -> None:
        model_id = self.catalog.asset_model.get(asset)
        if model_id in self.models:
            for d in self.catalog.asset_devices.get(asset, []):
                self.models[model_id].reset(d, quiet_until)

    def _quiet(self, asset: str, until: float) -> None:
        st = self.models.get(self.catalog.asset_model.get(asset))
        if st is not None:
            for d in self.catalog.asset_devices.get(asset, []):
                if d in st.index:
                    st.quiet_until[st.index[d]] = until

    # -- writes --------------------------------------------------------------------------
    def _write_anomalies(self, anomalies) -> None:
        if not anomalies:
            return
        with self.conn.cursor() as cur:
            cur.executemany(
                """INSERT INTO anomalies (time, asset_id, sensor, score, detail, detector)
                   VALUES (%s, %s, %s, %s, jsonb_build_object('z', %s::real), %s)
                   ON CONFLICT DO NOTHING""", anomalies)

    def _write_health(self, health) -> None:
        if not health:
            return
        keys = list(health)
        self.conn.execute(
            """INSERT INTO asset_health (asset_id, mode, updated_at, health, risk, detail)
               SELECT a, m, u, 1 - r, r, jsonb_build_object('evidence', e)
               FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::real[], %s::real[]) AS x(a, m, u, r, e)
               ON CONFLICT (asset_id, mode) DO UPDATE SET updated_at = EXCLUDED.updated_at,
                   health = EXCLUDED.health, risk = EXCLUDED.risk, detail = asset_health.detail || EXCLUDED.detail
               WHERE asset_health.updated_at <= EXCLUDED.updated_at""",
            ([k[0] for k in keys], [k[1] for k in keys], [health[k][0] for k in keys],
             as_real([health[k][1] for k in keys]), as_real([health[k][2] for k in keys])))

    # -- checkpoint ------------------------------------------------------------------------
    def checkpoint(self, commit: bool = True) -> None:
        state = {"models": {m: s.to_dict() for m, s in self.models.items()},
                 "pending": self.pending, "stream_time": self.stream_time,
                 "config": json.loads(json.dumps(asdict(self.config), default=str))}
        position = {"batch_id": self.reader.position, "repair_id": self.repair_position,
                    "downtime_id": self.downtime_position,
                    "false_alarm_id": self.rebaseline_position["false_alarm"],
                    "duty_change_id": self.rebaseline_position["duty_change"]}
        self.conn.execute(
            """INSERT INTO detector_checkpoints (name, saved_at, position, state) VALUES (%s, now(), %s, %s)
               ON CONFLICT (name) DO UPDATE SET saved_at = now(), position = EXCLUDED.position, state = EXCLUDED.state""",
            (self.name, json.dumps(position), json.dumps(state).encode()))
        if commit:
            self.conn.commit()
        self._checkpoint_at = time.monotonic()

    def _restore(self, position: dict, blob: bytes) -> None:
        state = json.loads(blob)
        self.reader.position = position["batch_id"]
        self.repair_position = position["repair_id"]
        self.downtime_position = position["downtime_id"]
        self.rebaseline_position = {"false_alarm": position.get("false_alarm_id", 0),
                                    "duty_change": position.get("duty_change_id", 0)}
        self.pending = [tuple(e) for e in state["pending"]]
        self.stream_time = state["stream_time"]
        for model_id, d in state["models"].items():
            if model_id in self.catalog.models:
                self._model(model_id).load_dict(d)

    # -- loop ------------------------------------------------------------------------------
    def run(self, poll_s: float = 1.0, stop=None, until_idle: bool = False) -> None:
        """Step until ``stop`` (a threading.Event) is set, or until caught up if ``until_idle``."""
        while stop is None or not stop.is_set():
            stats = self.step()
            if stats["readings"] == 0:
                if until_idle and not self._pending_batches():
                    break
                if stop is not None:
                    stop.wait(poll_s)
                else:
                    time.sleep(poll_s)
        self.checkpoint()

    def _pending_batches(self) -> bool:
        return bool(self.conn.execute("SELECT 1 FROM ingest_batches WHERE batch_id > %s LIMIT 1",
                                      (self.reader.position,)).fetchone())

    def close(self) -> None:
        self.conn.close()
