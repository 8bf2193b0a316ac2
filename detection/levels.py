"""Alarm levels learned from the platform's own history.

Detection opens a predictive order for an asset and failure mode when that mode's evidence (the
time-weighted share of recent readings whose anomaly is attributed to the mode,
:mod:`detection.kernels.evidence`) reaches the mode's *level*. Three numbers decide it: the
evidence memory ``tau_h``, the matched-filter score an anomaly needs to count for a mode
(``min_mode_score``), and per mode the level itself (``risk_threshold x rate_full``, or
``rate_full_intermittent`` for modes that show as spikes). Their defaults in
:class:`detection.service.ServiceConfig` were set by hand on one simulated fleet; ``prognos
train`` learns them per product model from what the platform has recorded:

1. **Replay.** The stored telemetry runs through the detection service's own code, in process
   (:meth:`DetectionService._stream` with ``write=False``: the same normaliser, bucketing,
   detectors, signatures, repairs and failures at their times; nothing is written). The
   condition normaliser is fitted on the first ``ServiceConfig.history_days`` of the history, as
   the service fits it on the history before it starts; the rest is replayed. Per row the
   detectors score, the replay keeps the mode the anomaly would be attributed to and its score.
2. **What happened.** Failures: unplanned downtime with the failure mode the repair found.
   Repairs (any kind) reset the asset, as in the service. An order (the first time the evidence
   of a mode reaches the level since the asset's last repair) is *true* when a failure of that
   mode on that asset follows within ``HORIZON_H`` or before the asset's next repair (the order
   stays live until a repair: a slow degradation caught weeks ahead is caught); orders opened less than ``HORIZON_H`` before
   the end of the history are left out of precision (the outcome of some is not known yet, and
   counting only those already known true would flatter). A failure
   is *caught* when the level was reached ``LEAD_H`` or more before it, since the last repair.
   An order whose life a repair ended (any kind: another mode's corrective repair, a predictive
   one, a preventive maintenance) with no failure of its mode is judged by that repair's
   *as-found* report (``repairs.detail.as_found``: the technician's grade of every mode of the
   asset, :data:`schemas.telemetry.AS_FOUND_GRADES`): *true* when the grade of the order's mode
   says its degradation was under way (:data:`UNDER_WAY`: ``worn`` or worse, the product's
   meaning of the grades, not tuned), *false* when ``good``. Without a report (older histories,
   other sources) it is as before: the platform does not know which degradation a preventive
   maintenance removed, so an order whose life a preventive maintenance ended has an unknown
   outcome and is left out of precision too, and one whose life another mode's repair ended
   counts false. A slow mode (fouling) caught weeks ahead is often on a life another mode's
   failure ends first: without the report its true orders looked false and its levels were
   learned high. An order whose life still runs at the end of the history,
   with no failure of its mode yet, counts false once it is older than a quantile ``q`` of the
   leads (order to failure) of the true orders of its mode at that level in the same history,
   and at least ``HORIZON_H`` (:func:`_known`); younger, its outcome is not known yet. Slow
   modes (fouling) are caught weeks ahead: counting such an order false after ``HORIZON_H``
   (``q`` = 0) made early true orders look false and pushed slow modes' levels to the top of the
   grid; never counting it (``q`` = 1) hid real false orders. ``q`` follows from the precision
   target p (:func:`censor_quantile`): past the ``q`` quantile a share ``1 - q`` of true orders is
   still waiting for its failure, so the order is more likely false than true once
   ``p (1 - q) < 1 - p``, i.e. ``q = 1 - (1 - p) / p`` (0.82 at p = 0.85).
   The leads' distribution is estimated with right-censoring, as a reliability engineer
   estimates a life distribution (:func:`lead_quantile`, Kaplan-Meier, :func:`km_survival`): a
   quantile of the failures seen alone is biased short, because the true orders whose failure
   was not seen are the long ones. The leads seen are events; a true order whose life a repair
   ended first (as-found ``worn`` or worse) is censored where its life ended; an order on a
   running life may be true (a lead censored at its age) or false (a "cured" subject, never to
   fail), so it enters with its probability of being true, ``p S(age) / (p S(age) + 1 - p)``
   from the survival S it helps estimate, to a fixed point (EM of a mixture cure model; the
   prior p is the one ``q`` assumes). Entering as surely true would hide false orders (what
   ``q`` = 1 did); left out, the running true orders, the long ones, would bias S short
   again. Past the longest lead seen S is taken as 0 (the zero-tail convention of mixture cure
   models, Sy & Taylor 2000: the history cannot tell a lead longer than any it has seen from a
   false order), so the quantile never lies beyond the data and such an older order counts
   false; the quantile falls back to ``HORIZON_H`` without any lead seen. None of this is
   tuned: the estimator, the prior and the convention are the textbook ones.
3. **The rule.** Per product model, for each ``(tau_h, min_mode_score)`` of a small grid
   (:data:`TAU_GRID` x :data:`SCORE_GRID`) the evidence is recomputed by the service's own
   kernel (:func:`evidence_update`) from the replayed attributions; per mode, the level of
   :data:`LEVEL_GRID` that catches the most failures ``LEAD_H`` ahead among those whose order
   precision on the history is at least the rule's precision target (ties: the rule's end of
   that plateau: the higher level, fewer orders, the lower one, earlier orders, the middle, or
   the one nearest the mode's shipped default level: where the history cannot tell levels
   apart, the manufacturer's value is the prior);
   if none reaches the target, the history does not support a level and the mode keeps the
   default. The grid point is the one that catches the most failures over the model's modes
   (first: the most modes with a level reaching the target; ties: higher pooled precision, then
   the defaults). A mode with fewer than
   :data:`MIN_FAILURES` failures in the replayed history keeps the default level; ``tau_h`` and
   ``min_mode_score`` are learned only when every mode of the model has that many and a level
   reaching the target at them (the default
   levels were set for the default memory and score). The defaults are the fallback: what the
   manufacturer ships before the fleet has a history.
4. **The rule's own parameters** (:class:`Rule`: the precision target and the tie-break) are
   chosen on the same history by an inner split of its assets (:func:`choose_rule`): each
   candidate of :data:`RULES` learns the levels on three quarters of each model's assets and
   is scored on the fourth, each quarter in turn; the candidate with the best held-out recall
   whose held-out precision reaches the product's target :data:`PRODUCT_PRECISION` (every
   candidate's held-out orders counted alike, with the running-life cutoff of that target,
   :data:`HELD_OUT_Q`: a candidate is not judged by its own definition) is the rule
   ``prognos train`` then applies to the whole history. Choosing the level on the same
   failures it is judged on flatters a strict target with a high tie (the highest level that
   caught every failure seen misses the next, weaker one); the held-out parts measure that.

How the rule's own parameters were chosen (not tuned on any fleet): ``LEAD_H`` = 24 h and
``HORIZON_H`` = 336 h are the lead-time benchmark's definitions of caught and true
(``simulator.scoring``), i.e. what the service promises; ``PRECISION_TARGET`` = 0.90, the
default rule's target (the product's precision target 0.85 plus a margin for the optimism of
choosing on the same history), is what the inner split starts from and keeps on exact ties;
its candidates 0.80-0.95 bracket the product's target; 4 parts: each learning set keeps three
quarters of the failures, so :data:`MIN_FAILURES` bites about as it does on the whole history;
``MIN_FAILURES`` = 5: below it one failure moves a mode's recall by more than 20 points; the
grids span the hand-tuned values by a factor of about two each way.

This module owns the ``alarm_levels`` table.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from itertools import chain

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from detection.kernels.evidence import evidence_update, mode_scores
from detection.reader import Batch
from prognos.logs import event
from schemas.telemetry import AS_FOUND_GRADES

log = logging.getLogger("prognos.levels")

#: Failures of a mode in the replayed history before its learned level replaces the default.
MIN_FAILURES = 5
#: Order precision on the history a level must reach.
PRECISION_TARGET = 0.90
#: A failure is caught when the order opened at least this long before it.
LEAD_H = 24.0
#: An order is true when a failure of its mode followed within this horizon.
HORIZON_H = 336.0
TAU_GRID = (12.0, 24.0, 48.0)
SCORE_GRID = (2.0, 3.0, 4.0)
#: Candidate evidence levels (log-spaced).
LEVEL_GRID = tuple(float(x) for x in np.round(np.geomspace(0.02, 0.9, 41), 4))
#: Hours of telemetry per replay read.
CHUNK_H = 6.0
#: As-found grades (:data:`schemas.telemetry.AS_FOUND_GRADES`) that say a mode's degradation was
#: under way: ``worn`` and worse (``good``: nothing to see).
UNDER_WAY = AS_FOUND_GRADES[AS_FOUND_GRADES.index("worn"):]


#: Which level of the plateau a rule takes (``default``: the one nearest the shipped default level).
TIES = ("higher", "middle", "lower", "default")


@dataclass(frozen=True)
class Rule:
    """The rule's own free parameters: the order precision on the history a level must reach,
    and which level of the plateau (the levels that catch the most failures among those reaching
    it) to take: the ``higher`` (fewest orders), ``middle``, ``lower`` (earliest orders) or
    ``default`` (nearest the shipped default level, on a log scale). ``censor_q``
    (:func:`censor_quantile`) follows from the target."""

    precision_target: float = PRECISION_TARGET
    tie: str = "higher"

    def __post_init__(self):
        if self.tie not in TIES:
            raise ValueError(f"tie must be one of {', '.join(TIES)}, got {self.tie!r}")

    @property
    def censor_q(self) -> float:
        """:func:`censor_quantile` of the precision target."""
        return censor_quantile(self.precision_target)


def censor_quantile(precision: float) -> float:
    """The quantile q of true orders' leads past which an order on a still-running life with no
    failure of its mode is more likely false than true, at order precision ``precision`` (p):
    of the true orders a share 1 - q is still waiting for its failure at that age, so the odds
    are p (1 - q) : (1 - p), even at q = 1 - (1 - p) / p (0.75 at p 0.80, 0.82 at 0.85, 0.89
    at 0.90). 0 (the 14-day rule) for p <= 0.5. The leads' quantile is the Kaplan-Meier one
    (:func:`lead_quantile`)."""
    return max(0.0, 1.0 - (1.0 - precision) / precision)


DEFAULT_RULE = Rule()
#: The candidates :func:`choose_rule` compares (the default rule first: it wins exact ties).
RULES = (DEFAULT_RULE,) + tuple(Rule(p, tie) for p in (0.80, 0.85, 0.90, 0.95) for tie in TIES
                                if Rule(p, tie) != DEFAULT_RULE)
#: The product's order precision target, which the chosen rule must reach on held-out assets.
PRODUCT_PRECISION = 0.85
#: How :func:`choose_rule` counts every candidate's held-out orders: one definition for all, the
#: running-life cutoff of the product's precision target (:func:`censor_quantile`).
HELD_OUT_Q = censor_quantile(PRODUCT_PRECISION)
#: Parts of the history's assets in the inner split.
INNER_FOLDS = 4


@dataclass
class ModeLevel:
    """One failure mode's order level and what it achieved on the history."""

    level: float
    failures: int
    caught: int
    orders: int
    true_orders: int
    learned: bool


@dataclass
class Levels:
    """A product model's alarm levels (``modes``: mode -> :class:`ModeLevel`)."""

    model_id: str
    tau_h: float
    min_mode_score: float
    modes: dict[str, ModeLevel]
    evidence_learned: bool = False
    detail: dict = field(default_factory=dict)


def default_levels(info, config) -> np.ndarray:
    """The hand-tuned (manufacturer-safe) evidence levels of ``info``'s modes."""
    rate_full = np.where(info.intermittent, config.rate_full_intermittent, config.rate_full)
    return rate_full * config.risk_threshold


def resolve(info, config, stored: Levels | None) -> tuple[float, float, np.ndarray]:
    """``(tau_h, min_mode_score, rate_full per mode)`` detection uses for ``info``'s model: the
    learned values where ``stored`` has them, else ``config``'s. A learned level L is applied as
    ``rate_full = L / risk_threshold``, so an order still opens at ``risk >= risk_threshold``."""
    rate_full = np.where(info.intermittent, config.rate_full_intermittent, config.rate_full).astype(np.float64)
    if stored is None or not config.learned_levels:
        return config.tau_h, config.min_mode_score, rate_full
    for m, mode in enumerate(info.modes):
        ml = stored.modes.get(mode)
        if ml is not None and ml.learned:
            rate_full[m] = ml.level / config.risk_threshold
    if stored.evidence_learned:
        return stored.tau_h, stored.min_mode_score, rate_full
    return config.tau_h, config.min_mode_score, rate_full


# -- storage ----------------------------------------------------------------------------------
def save(conn: psycopg.Connection, levels: Levels) -> None:
    """Store (replace) a product model's alarm levels."""
    conn.execute(
        """INSERT INTO alarm_levels (model_id, tau_h, min_mode_score, levels, detail, trained_at)
           VALUES (%s, %s, %s, %s, %s, now())
           ON CONFLICT (model_id) DO UPDATE SET tau_h = EXCLUDED.tau_h, min_mode_score = EXCLUDED.min_mode_score,
               levels = EXCLUDED.levels, detail = EXCLUDED.detail, trained_at = now()""",
        (levels.model_id, levels.tau_h, levels.min_mode_score,
         Jsonb({m: asdict(v) for m, v in levels.modes.items()}),
         Jsonb({**levels.detail, "evidence_learned": levels.evidence_learned})))


def load(conn: psycopg.Connection, model_id: str | None = None) -> dict[str, Levels]:
    """Stored alarm levels, ``{model_id: Levels}``."""
    rows = conn.execute("SELECT model_id, tau_h, min_mode_score, levels, detail FROM alarm_levels "
                        "WHERE %(m)s::text IS NULL OR model_id = %(m)s", {"m": model_id}).fetchall()
    return {m: Levels(m, float(tau), float(score), {k: ModeLevel(**v) for k, v in lv.items()},
                      bool(det.get("evidence_learned")), dict(det))
            for m, tau, score, lv, det in rows}


# -- replay -----------------------------------------------------------------------------------
class _Recorder:
    """Observer of the detection service: per scored row, the device, time, the mode its anomaly
    would be attributed to (-1: not flagged) and the matched-filter score."""

    def __init__(self):
        self.parts: dict[str, list] = {}
        self.devices: dict[str, list[str]] = {}

    def __call__(self, model_id, st, idx, ts, res):
        scores, best = mode_scores(res.z, st.weights, st.absolute)
        best = np.where(res.flag & (best >= 0), best, -1)
        score = scores[np.arange(len(best)), np.maximum(best, 0)] if scores.shape[1] else np.zeros(len(best))
        self.parts.setdefault(model_id, []).append(
            (idx.astype(np.int64), ts.astype(np.float64), best.astype(np.int8), score.astype(np.float64)))
        self.devices[model_id] = st.devices


@dataclass
class Replay:
    """What the replay of one product model's history gives the rule."""

    model_id: str
    modes: list[str]
    assets: np.ndarray          # object[n]: asset of each scored row
    t: np.ndarray               # float64[n] epoch seconds
    best: np.ndarray            # int8[n] attributed mode, -1 none
    score: np.ndarray           # float64[n]
    failures: list[tuple[str, str, float]]     # (asset, mode, time)
    repairs: dict[str, np.ndarray]             # asset -> sorted repair finish times
    preventive: dict[str, np.ndarray]          # asset -> finish times of preventive maintenance
    start: float                # first replayed time
    end: float                  # end of the history
    defaults: np.ndarray        # float[modes]: the default (hand-tuned) level of each mode
    as_found: dict[str, dict[float, dict]] = field(default_factory=dict)
    """asset -> {repair finish time: the technician's as-found report (mode -> grade)}: only
    repairs that carry one."""


def replay(settings, config, models: list[str] | None = None, *, since: datetime | None = None,
           until: datetime | None = None, progress=None) -> dict[str, Replay]:
    """Run the stored telemetry of ``models`` (default: all) through the detection service's code
    without writing anything, and collect per row the attributed mode and score."""
    from detection.service import DetectionService     # the service imports this module

    svc = DetectionService(settings, replace(config, risk_threshold=np.inf, learned_levels=False),
                           name="levels-replay")
    rec = _Recorder()
    svc.observer = rec
    try:
        svc._refresh_catalog(force=True)
        models = [m for m in (models or list(svc.catalog.models)) if m in svc.catalog.models]
        span = svc.conn.execute(
            """SELECT min(t.time), max(t.time) FROM telemetry t JOIN devices d USING (device_id)
               JOIN assets a USING (asset_id) WHERE a.model_id = ANY(%(m)s)
               AND (%(s)s::timestamptz IS NULL OR t.time >= %(s)s)
               AND (%(u)s::timestamptz IS NULL OR t.time < %(u)s)""",
            {"m": models, "s": since, "u": until}).fetchone()
        if span[0] is None:
            return {}
        t0, t1 = span[0], span[1] + timedelta(microseconds=1)
        fit_end = min(t0 + timedelta(days=config.history_days), t1)
        svc.catalog.models = {m: svc.catalog.models[m] for m in models}
        svc._fit_normalizers(first=fit_end)
        svc._collect_events()
        stats = {"readings": 0, "orders_opened": 0, "corrective": 0, "repairs": 0}
        edges = []
        t = fit_end
        while t < t1:
            edges.append((t, min(t + timedelta(hours=CHUNK_H), t1)))
            t = edges[-1][1]
        for a, b in (progress(edges) if progress else edges):
            rows = svc.conn.execute(
                """SELECT t.device_id, t.time, t.vals FROM telemetry t JOIN devices d USING (device_id)
                   JOIN assets s USING (asset_id) WHERE s.model_id = ANY(%s) AND t.time >= %s AND t.time < %s
                   ORDER BY t.time""", (models, a, b)).fetchall()
            if not rows:
                continue
            batch = Batch(np.array([r[0] for r in rows], dtype=object),
                          np.array([r[1].replace(tzinfo=None) for r in rows], dtype="datetime64[us]"),
                          [r[2] for r in rows], 0)
            svc._stream(batch, stats, [], {}, write=False)
        svc.conn.rollback()
        failures: dict[str, list] = {}
        for asset, mode, started in svc.conn.execute(
                "SELECT asset_id, mode, started_at FROM downtime WHERE NOT planned AND mode IS NOT NULL"):
            failures.setdefault(svc.catalog.asset_model.get(asset), []).append((asset, mode, started.timestamp()))
        repairs: dict[str, list] = {}
        preventive: dict[str, list] = {}
        as_found: dict[str, dict[float, dict]] = {}
        for asset, finished, kind, found in svc.conn.execute(
                "SELECT asset_id, finished_at, kind, detail->'as_found' FROM repairs"):
            repairs.setdefault(asset, []).append(finished.timestamp())
            if kind == "preventive":
                preventive.setdefault(asset, []).append(finished.timestamp())
            if isinstance(found, dict) and found:
                as_found.setdefault(asset, {})[finished.timestamp()] = found
        out = {}
        for model_id in models:
            info = svc.catalog.models[model_id]
            parts = rec.parts.get(model_id, [])
            devs = np.asarray(rec.devices.get(model_id, []), dtype=object)
            cat = [np.concatenate([p[k] for p in parts]) if parts else np.zeros(0) for k in range(4)]
            assets = np.array([svc.catalog.device_asset.get(d) for d in devs], dtype=object)
            out[model_id] = Replay(
                model_id, list(info.modes), assets[cat[0].astype(np.int64)] if len(devs) else np.zeros(0, object),
                cat[1], cat[2].astype(np.int8), cat[3],
                [f for f in failures.get(model_id, []) if f[1] in info.modes],
                {a: np.sort(np.asarray(v)) for a, v in repairs.items() if svc.catalog.asset_model.get(a) == model_id},
                {a: np.sort(np.asarray(v)) for a, v in preventive.items() if svc.catalog.asset_model.get(a) == model_id},
                fit_end.timestamp(), t1.timestamp(), default_levels(info, config),
                {a: v for a, v in as_found.items() if svc.catalog.asset_model.get(a) == model_id})
        event(log, "levels_replayed", models=models, rows={m: len(r.t) for m, r in out.items()},
              start=fit_end.isoformat(), end=t1.isoformat())
        return out
    finally:
        svc.close()


# -- the rule ---------------------------------------------------------------------------------
def _segments(r: Replay) -> tuple[np.ndarray, dict]:
    """Pseudo-device per row: (asset, number of repairs finished at or before the row), the unit
    the service's evidence starts over on; and (asset, k) -> pseudo-device."""
    if not len(r.t):
        return np.zeros(0, dtype=np.int64), {}
    names, code = np.unique(r.assets.astype(str), return_inverse=True)
    k = np.zeros(len(r.t), dtype=np.int64)
    for c, a in enumerate(names):
        reps = r.repairs.get(a)
        if reps is not None and len(reps):
            rows = code == c
            k[rows] = np.searchsorted(reps, r.t[rows], side="right")
    width = int(k.max()) + 1
    uniq, seg = np.unique(code * width + k, return_inverse=True)
    return seg.astype(np.int64), {(str(names[u // width]), int(u % width)): i for i, u in enumerate(uniq)}


def _crossings(seg: np.ndarray, t: np.ndarray, ev: np.ndarray, levels) -> list[dict[int, float]]:
    """Per level: pseudo-device -> first time its evidence reached the level."""
    order = np.argsort(seg, kind="stable")            # rows are in time order per pseudo-device
    s, tt, v = seg[order], t[order], ev[order]
    out = []
    for level in levels:
        hit = v >= level
        if not hit.any():
            out.append({})
            continue
        hs, ht = s[hit], tt[hit]
        first = np.concatenate(([True], hs[1:] != hs[:-1]))
        out.append(dict(zip(hs[first].tolist(), ht[first].tolist())))
    return out


def evaluate(r: Replay, tau_h: float, min_score: float, levels=LEVEL_GRID, *, seg=None, keys=None) -> dict:
    """Per mode and level: failures, caught >= LEAD_H ahead, orders with a known outcome, true
    ones, and for the running-life rule (:func:`_known`) the leads (hours) of true orders whose
    failure was seen, those of true orders whose life a repair ended first (censored there) and
    the ages of orders on lives still running. Returns {mode: {"failures": n, "caught": [..],
    "orders": [..], "true": [..], "leads": [[..]..], "censored": [[..]..], "running": [[..]..]}}."""
    if seg is None:
        seg, keys = _segments(r)
    n_modes, n_seg = len(r.modes), int(seg.max()) + 1 if len(seg) else 0
    z = np.zeros((len(r.t), n_modes))
    flag = r.best >= 0
    z[np.flatnonzero(flag), r.best[flag].astype(np.int64)] = r.score[flag]
    ev = evidence_update(seg, r.t, z, flag, np.eye(n_modes), np.zeros(n_modes, dtype=np.bool_),
                         np.zeros((n_seg, n_modes)), np.full(n_seg, np.nan), tau_h * 3600.0, min_score)
    lead, horizon = LEAD_H * 3600.0, HORIZON_H * 3600.0
    seg_asset = {i: key[0] for key, i in keys.items()}
    out = {}
    for m, mode in enumerate(r.modes):
        fails = [(a, tf) for a, f, tf in r.failures if f == mode and r.start <= tf <= r.end]
        fail_at: dict[str, list] = {}
        for a, tf in fails:
            fail_at.setdefault(a, []).append(tf)
        caught, orders, true, leads, censored, running = [], [], [], [], [], []
        for cross in _crossings(seg, r.t, ev[:, m], levels):
            c = 0
            for a, tf in fails:
                reps = r.repairs.get(a, np.zeros(0))
                i = keys.get((a, int(np.searchsorted(reps, tf, side="right"))))
                if i is not None and i in cross and cross[i] <= tf - lead:
                    c += 1
            n_known = n_true = 0
            lv_leads, lv_censored, lv_running = [], [], []
            for i, t in cross.items():
                if t > r.end - horizon:
                    continue                      # outcome not known yet (counting only the true ones would flatter)
                a = seg_asset[i]
                reps = r.repairs.get(a, np.zeros(0))
                k = int(np.searchsorted(reps, t, side="right"))
                life_end = reps[k] if k < len(reps) else np.inf       # the repair that ended the order's life
                after = [tf for tf in fail_at.get(a, []) if t < tf <= max(t + horizon, life_end)]
                found = _found(r, a, life_end, mode)
                if after:
                    n_known, n_true = n_known + 1, n_true + 1
                    lv_leads.append((min(after) - t) / 3600.0)
                elif found is not None:           # the repair that ended the life graded the mode
                    n_known += 1
                    if found in UNDER_WAY:        # true, its failure not seen: a lead censored at the repair
                        n_true += 1
                        lv_censored.append((life_end - t) / 3600.0)
                elif not (np.isfinite(life_end) and np.isin(life_end, r.preventive.get(a, ())).any()):
                    n_known += 1                  # no failure of the mode; its life not ended by a maintenance
                    if not np.isfinite(life_end):
                        lv_running.append((r.end - t) / 3600.0)       # still running: false under the 14-day rule
            caught.append(c)
            orders.append(n_known)
            true.append(n_true)
            leads.append(lv_leads)
            censored.append(lv_censored)
            running.append(lv_running)
        out[mode] = {"failures": len(fails), "caught": caught, "orders": orders, "true": true,
                     "leads": leads, "censored": censored, "running": running}
    return out


def _found(r: Replay, asset: str, life_end: float, mode: str) -> str | None:
    """The as-found grade of ``mode`` that the repair finishing at ``life_end`` reported (None:
    no report, or the life still runs)."""
    grade = r.as_found.get(asset, {}).get(life_end, {}).get(mode) if np.isfinite(life_end) else None
    return grade if grade in AS_FOUND_GRADES else None


def km_survival(durations, observed, weights=None) -> tuple[np.ndarray, np.ndarray]:
    """The Kaplan-Meier estimate of a survival function from right-censored durations: the
    distinct event times and the survival just after each (``observed``: the event was seen at
    that duration, else the subject was censored there; ``weights``: each subject's weight,
    default 1). A subject censored at an event's time is still at risk at it (the usual
    convention). Empty arrays without events. scipy's ``stats.ecdf`` computes the same estimate
    (the tests compare them) but takes no weights, which the running orders need
    (:func:`lead_quantile`); lifelines, which does, would be a new and heavy dependency.

    >>> t, s = km_survival([2, 3, 3, 5, 8], [True, False, True, True, False])
    >>> t.tolist(), s.round(4).tolist()
    ([2.0, 3.0, 5.0], [0.8, 0.6, 0.3])
    """
    d = np.asarray(durations, dtype=float)
    obs = np.asarray(observed, dtype=bool)
    w = np.ones(len(d)) if weights is None else np.asarray(weights, dtype=float)
    times = np.unique(d[obs])
    order = np.argsort(d, kind="stable")
    at_risk = np.cumsum(w[order][::-1])[::-1]                  # weight still under observation at d[order][i]
    n = at_risk[np.searchsorted(d[order], times, side="left")]
    dead = np.bincount(np.searchsorted(times, d[obs]), weights=w[obs], minlength=len(times))
    return times, np.cumprod(1.0 - dead / n)


def _survival_at(times: np.ndarray, surv: np.ndarray, ages) -> np.ndarray:
    """The Kaplan-Meier step function at ``ages``, with the zero-tail convention past the last
    event (Sy & Taylor 2000): 0 there, 1 before the first."""
    ages = np.asarray(ages, dtype=float)
    if not len(times):
        return np.zeros(len(ages))
    k = np.searchsorted(times, ages, side="right") - 1
    return np.where(ages > times[-1], 0.0, np.where(k >= 0, surv[np.maximum(k, 0)], 1.0))


def lead_quantile(leads, censored, running, q: float, prior: float, iterations: int = 200) -> float:
    """The ``q`` quantile (hours) of the leads of true orders, by Kaplan-Meier: ``leads``, true
    orders whose failure was seen (events); ``censored``, true orders whose failure was not seen
    because a repair ended the life first (censored where it ended); ``running``, the ages of
    orders whose life still runs, which may be true (censored at their age) or false (never to
    fail): each enters with its posterior probability of being true, ``prior S(age) / (prior
    S(age) + 1 - prior)``, from the survival estimated with it (EM of a mixture cure model, prior
    = the precision the rule assumes). Past the last seen lead the survival is taken as 0 (the
    zero-tail convention: no true order was seen to wait longer), so the quantile is at most the
    longest seen lead; 0 when no lead was seen."""
    leads = np.asarray(leads, dtype=float)
    if not len(leads):
        return 0.0
    censored, running = np.asarray(censored, dtype=float), np.asarray(running, dtype=float)
    durations = np.concatenate([leads, censored, running])
    observed = np.arange(len(durations)) < len(leads)
    w_run = np.zeros(len(running))
    for _ in range(iterations):
        times, surv = km_survival(durations, observed, np.concatenate([np.ones(len(leads) + len(censored)), w_run]))
        s = prior * _survival_at(times, surv, running)
        new = np.divide(s, s + 1.0 - prior, out=np.zeros_like(s), where=s + 1.0 - prior > 0)
        if np.allclose(new, w_run, rtol=0.0, atol=1e-9):
            break
        w_run = new                        # weights only grow: the survival rises with them
    below = np.flatnonzero(surv <= 1.0 - q)
    return float(times[below[0]] if len(below) else times[-1])


def _prior(censor_q: float) -> float:
    """The precision p whose :func:`censor_quantile` is ``censor_q`` (its inverse, for q > 0)."""
    return 1.0 / (2.0 - censor_q)


def _known(e: dict, censor_q: float, n: int | None = None) -> np.ndarray:
    """Orders with a known outcome per level (the first ``n``) when an order on a life still
    running at the end of the history, with no failure of its mode, counts false only once it is
    older than ``max(HORIZON_H, the censor_q quantile of the leads of the true orders at that
    level)``, estimated by Kaplan-Meier (:func:`lead_quantile`: true orders whose life a repair
    ended are censored there, running ones enter with their probability of being true)
    (``censor_q`` 0: false after ``HORIZON_H``, the 14-day rule; younger: unknown)."""
    orders = np.asarray(e["orders"][:n], dtype=float)
    if censor_q <= 0:
        return orders
    out = orders.copy()
    for i, (lv_leads, lv_cens, lv_running) in enumerate(zip(e["leads"][:len(out)], e["censored"][:len(out)],
                                                            e["running"][:len(out)])):
        if lv_running:
            cutoff = max(HORIZON_H, _cutoff(tuple(lv_leads), tuple(lv_cens), tuple(lv_running), censor_q))
            out[i] -= sum(1 for age in lv_running if age <= cutoff)
    return out


@functools.lru_cache(maxsize=1 << 16)
def _cutoff(leads: tuple, censored: tuple, running: tuple, censor_q: float) -> float:
    """:func:`lead_quantile` at ``censor_q`` and its prior, memoised: the inner split asks for the
    same level's cutoff once per candidate rule."""
    return lead_quantile(leads, censored, running, censor_q, _prior(censor_q))


def _choose(ev: dict, rule: Rule, grid, default: float) -> int | None:
    """Index (among the candidate levels ``grid``, evaluated first) of the level ``rule`` picks for
    one mode (``default``: its shipped level); None when no level reaches the rule's precision
    target."""
    n = len(grid)
    caught, true = (np.asarray(ev[k][:n], dtype=float) for k in ("caught", "true"))
    orders = _known(ev, rule.censor_q, n)
    prec = np.divide(true, orders, out=np.zeros_like(true), where=orders > 0)
    feasible = np.flatnonzero((orders > 0) & (prec >= rule.precision_target))
    if not len(feasible):
        return None
    plateau = feasible[caught[feasible] == caught[feasible].max()]       # levels ascend
    if rule.tie == "default":
        return int(plateau[np.argmin(np.abs(np.log(np.asarray(grid, dtype=float)[plateau] / default)))])
    return int(plateau[{"higher": -1, "lower": 0, "middle": len(plateau) // 2}[rule.tie]])


def _eval_levels(r: Replay, levels) -> tuple:
    """The candidate levels, then the default levels not among them (to score a mode that keeps its default)."""
    return tuple(levels) + tuple(sorted(set(float(x) for x in r.defaults) - set(levels)))


def _points(config) -> list[tuple[float, float]]:
    """Every (tau_h, min_mode_score) the rule may pick: the grid and the defaults."""
    grid = [(tau, s) for tau in TAU_GRID for s in SCORE_GRID]
    return grid + [(config.tau_h, config.min_mode_score)] * ((config.tau_h, config.min_mode_score) not in grid)


def _tables(r: Replay, points, levels) -> dict:
    """:func:`evaluate` at each (tau_h, min_mode_score) of ``points``."""
    seg, keys = _segments(r)
    return {p: evaluate(r, p[0], p[1], levels, seg=seg, keys=keys) for p in points}


def _decide(tables: dict, modes: list[str], config, rule: Rule, levels, defaults: dict) -> dict:
    """The rule of the module docstring on evaluated ``tables`` (:func:`_tables`: the candidate
    ``levels`` first; ``defaults``: mode -> shipped level): ``{"point": (tau_h, min_mode_score), "pick": {mode: level index}, "enough":
    {mode: bool}, "evidence_learned": bool, "tried": [...]}``."""
    default = (config.tau_h, config.min_mode_score)
    any_ev = tables[default]
    enough = {mode: any_ev[mode]["failures"] >= MIN_FAILURES for mode in modes}
    all_enough = bool(modes) and all(enough.values())
    grid = [p for p in tables if p != default] + [default] if all_enough else [default]
    best, tried = None, []
    for point in grid:
        ev = tables[point]
        pick = {mode: _choose(ev[mode], rule, levels, defaults[mode]) for mode in modes if enough[mode]}
        pick = {mode: i for mode, i in pick.items() if i is not None}
        if all_enough and len(pick) < len(modes) and point != default:
            continue      # a mode would keep its default level, which was set for the default memory and score
        caught = sum(ev[mode]["caught"][i] for mode, i in pick.items())
        orders = sum(_known(ev[mode], rule.censor_q)[i] for mode, i in pick.items())
        true = sum(ev[mode]["true"][i] for mode, i in pick.items())
        key = (len(pick), caught, true / orders if orders else 0.0, point == default)
        tried.append({"tau_h": point[0], "min_mode_score": point[1], "caught": caught, "orders": orders,
                      "true": true, "modes_with_level": len(pick)})
        if best is None or key > best[0]:
            best = (key, point, pick)
    _, point, pick = best
    return {"point": point, "pick": pick, "enough": enough, "tried": tried,
            "evidence_learned": all_enough and len(pick) == len(modes)}


def learn(r: Replay, config, levels=LEVEL_GRID, rule: Rule | None = None) -> Levels:
    """The alarm levels of ``r``'s product model by the rule in the module docstring (``rule``:
    its free parameters, default :data:`DEFAULT_RULE`; :func:`choose_rule` chooses them)."""
    rule = rule or DEFAULT_RULE
    ev_levels = _eval_levels(r, levels)
    n_fail = {mode: sum(1 for _, f, tf in r.failures if f == mode and r.start <= tf <= r.end) for mode in r.modes}
    all_enough = bool(r.modes) and all(n >= MIN_FAILURES for n in n_fail.values())
    tables = _tables(r, _points(config) if all_enough else [(config.tau_h, config.min_mode_score)], ev_levels)
    d = _decide(tables, r.modes, config, rule, levels, dict(zip(r.modes, r.defaults)))
    ev, pick = tables[d["point"]], d["pick"]
    defaults = dict(zip(r.modes, r.defaults))
    modes = {}
    for mode in r.modes:
        e = ev[mode]
        if mode in pick:
            i = pick[mode]
            modes[mode] = ModeLevel(ev_levels[i], e["failures"], e["caught"][i], int(_known(e, rule.censor_q)[i]),
                                    e["true"][i], True)
        else:
            modes[mode] = ModeLevel(float(defaults[mode]), n_fail[mode], 0, 0, 0, False)
    detail = {"rule": "max caught >= lead_h ahead s.t. order precision >= target, per mode",
              "precision_target": rule.precision_target, "tie": rule.tie,
              "censor_q": rule.censor_q, "min_failures": MIN_FAILURES,
              "lead_h": LEAD_H, "horizon_h": HORIZON_H,
              "no_level_met_target": sorted(m for m in r.modes if d["enough"][m] and m not in pick),
              "as_found_reports": sum(len(v) for v in r.as_found.values()),
              "history": {"start": datetime.fromtimestamp(r.start, timezone.utc).isoformat(),
                          "end": datetime.fromtimestamp(r.end, timezone.utc).isoformat(), "rows": int(len(r.t))},
              "grid": d["tried"]}
    return Levels(r.model_id, float(d["point"][0]), float(d["point"][1]), modes, d["evidence_learned"], detail)


# -- choosing the rule's own parameters: an inner split of the history ------------------------
def _subset(r: Replay, rows: np.ndarray, assets: set) -> Replay:
    """``r`` restricted to ``assets`` (``rows``: their rows)."""
    return replace(r, assets=r.assets[rows], t=r.t[rows], best=r.best[rows], score=r.score[rows],
                   failures=[f for f in r.failures if f[0] in assets],
                   repairs={a: v for a, v in r.repairs.items() if a in assets},
                   as_found={a: v for a, v in r.as_found.items() if a in assets},
                   preventive={a: v for a, v in r.preventive.items() if a in assets})


def _folds(r: Replay, k: int, seed: int) -> list[set]:
    """``k`` disjoint sets of ``r``'s assets, failures spread evenly: assets in a seeded random
    order, stably sorted by their number of failures, dealt out in turn."""
    assets = sorted(set(np.unique(r.assets.astype(str)).tolist()) | {f[0] for f in r.failures})
    n_fail = {a: 0 for a in assets}
    for a, _, tf in r.failures:
        if r.start <= tf <= r.end:
            n_fail[a] += 1
    rng = np.random.default_rng(seed)
    order = sorted(rng.permutation(len(assets)).tolist(), key=lambda i: -n_fail[assets[i]])
    return [{assets[i] for i in order[j::k]} for j in range(k)]


def _sum_tables(parts: list[dict]) -> dict:
    """Tables of disjoint sets of assets added up (every count is a sum over assets)."""
    out = {}
    for p in parts[0]:
        out[p] = {mode: {**{k: (sum(t[p][mode][k] for t in parts) if k == "failures" else
                                np.sum([t[p][mode][k] for t in parts], axis=0).tolist())
                            for k in ("failures", "caught", "orders", "true")},
                         **{k: [list(chain.from_iterable(lists)) for lists in zip(*(t[p][mode][k] for t in parts))]
                            for k in ("leads", "censored", "running")}}
                  for mode in parts[0][p]}
    return out


def _held_out(tables: dict, d: dict, modes: list[str], defaults: dict, ev_levels: tuple) -> np.ndarray:
    """(failures, caught, orders, true) of decision ``d`` (:func:`_decide`) on held-out ``tables``,
    every candidate's orders counted by the same definition (:data:`HELD_OUT_Q`)."""
    ev = tables[d["point"]]
    out = np.zeros(4, dtype=np.int64)
    for mode in modes:
        i = d["pick"].get(mode, ev_levels.index(float(defaults[mode])))
        e = ev[mode]
        out += (e["failures"], e["caught"][i], int(_known(e, HELD_OUT_Q)[i]), e["true"][i])
    return out


def choose_rule(replays: dict[str, Replay], config, rules=RULES, *, folds: int = INNER_FOLDS,
                seed: int = 0, levels=LEVEL_GRID, progress=None) -> tuple[Rule, dict]:
    """Choose the rule's own parameters on the history alone, by an inner split of its assets.

    Each product model's assets are dealt into ``folds`` parts (:func:`_folds`); for each part,
    every candidate rule learns the levels (:func:`learn`'s decision) from the other parts and
    its orders are counted on that part (failures caught ``LEAD_H`` ahead, orders with a known
    outcome, true ones, as in :func:`evaluate`). Counts are pooled over parts and models: the
    held-out recall and precision of each candidate. Chosen: the candidate with the highest
    held-out recall among those whose held-out precision reaches :data:`PRODUCT_PRECISION` (the
    product's target); ties: higher held-out precision, then the earlier candidate. When none
    reaches it: the most precise. Cheap: the replay is not repeated; each part's counts are
    computed once per (tau_h, min_mode_score), and a learning set's are the sum of its parts'.

    Returns the chosen rule and a report (per candidate, and for the chosen one as ``held_out``:
    held-out counts, recall, precision, and the worst part's precision)."""
    rules = list(rules)
    counts = np.zeros((len(rules), folds, 4), dtype=np.int64)
    models = [m for m, r in replays.items() if len(r.t)]
    for model_id in (progress(models) if progress else models):
        r = replays[model_id]
        ev_levels = _eval_levels(r, levels)
        defaults = dict(zip(r.modes, r.defaults))
        parts = _folds(r, folds, seed)
        names, code = np.unique(r.assets.astype(str), return_inverse=True)
        tables = []
        for part in parts:
            rows = np.isin(names, list(part))[code]
            tables.append(_tables(_subset(r, rows, part), _points(config), ev_levels))
        for j in range(folds):
            train = _sum_tables([t for i, t in enumerate(tables) if i != j])
            for c, rule in enumerate(rules):
                counts[c, j] += _held_out(tables[j], _decide(train, r.modes, config, rule, levels, defaults),
                                          r.modes, defaults, ev_levels)
    report = []
    for rule, cnt in zip(rules, counts):
        f, c, o, t = cnt.sum(axis=0).tolist()
        part_prec = [tt / oo if oo else None for _, _, oo, tt in cnt.tolist()]
        report.append({"precision_target": rule.precision_target, "tie": rule.tie, "censor_q": rule.censor_q,
                       "failures": f, "caught": c,
                       "orders": o, "true": t, "recall": c / f if f else 0.0, "precision": t / o if o else 0.0,
                       "worst_part_precision": min((x for x in part_prec if x is not None), default=None)})
    feasible = [i for i, x in enumerate(report) if x["precision"] >= PRODUCT_PRECISION]
    if feasible:
        best = max(feasible, key=lambda i: (report[i]["recall"], report[i]["precision"], -i))
    else:
        best = max(range(len(rules)), key=lambda i: (report[i]["precision"], -i))
    event(log, "levels_rule_chosen", precision_target=rules[best].precision_target, tie=rules[best].tie,
          censor_q=rules[best].censor_q,
          folds=folds, held_out={k: report[best][k] for k in ("recall", "precision", "failures", "orders")})
    return rules[best], {"folds": folds, "seed": seed, "product_precision": PRODUCT_PRECISION,
                         "chosen": asdict(rules[best]), "held_out": report[best], "candidates": report}
