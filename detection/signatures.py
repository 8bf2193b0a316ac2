"""Failure-mode signatures learned from the platform's own history.

A signature says which sensors move before a failure of a mode, which way, and how much
relative to each other, in units of each sensor's own spread: what detection matches an
anomaly's deviations against to attribute it to a mode (:mod:`detection.kernels.evidence`).

Learned by ``prognos train`` from what the platform has recorded: the failures (unplanned
downtime with the mode the repair found) and the hourly telemetry before them. For each
failure of a predictable mode: the asset's hourly means with the operating regime removed
(:class:`detection.regime.ConditionNormalizer`, fitted on the model's running hours), divided by
each sensor's robust spread within an asset, give z-scores; the shift is the mean z over the
``pre_h`` running hours before the failure minus the mean over the first ``base_h`` running
hours of that life (after the previous repair, or the start of the data). The mode's signature
is the median over its failures of each failure's shift scaled to its largest magnitude, kept
on the sensors that moved the same way in most of them (see :func:`learn`).

With fewer than :data:`MIN_EVENTS` failures of a mode, detection keeps the manufacturer's
direction-only knowledge (``failure_modes.signature``: +1 / -1 per sensor the mode moves).
This module owns the ``learned_signatures`` table.

>>> import numpy as np
>>> from detection.prediction.history import AssetHistory, ModelHistory
>>> rng = np.random.default_rng(0)
>>> assets = []
>>> for k in range(6):
...     v = np.c_[rng.uniform(0.5, 1, 400), rng.normal(0, 1, (400, 2))]
...     v[-48:, 1] += np.linspace(0, 6, 48)            # the mode raises sensor 1 before failing
...     v[-48:, 2] -= np.linspace(0, 3, 48)            # and lowers sensor 2 half as much
...     assets.append(AssetHistory(f"A{k}", 0.0, v, failures=[(400.0, "wear")]))
>>> h = ModelHistory("M", ["load", "temp", "flow"], {"wear": True}, assets, moved={"temp", "flow"})
>>> sig = learn(h)["wear"]
>>> sig.events, {s: round(w, 1) for s, w in sig.signature.items()}
(6, {'temp': 1.0, 'flow': -0.5})
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from detection.prediction.dataset import blank_down
from detection.prediction.history import ModelHistory
from detection.regime import ConditionNormalizer

#: Failures of a mode needed before its learned signature replaces the direction-only one.
MIN_EVENTS = 3


@dataclass
class Learned:
    """One mode's learned signature (``signature``: sensor -> weight in [-1, 1])."""

    signature: dict[str, float]
    events: int
    detail: dict = field(default_factory=dict)


def _zscores(history: ModelHistory) -> list[np.ndarray]:
    """Per asset: hourly means with the regime removed, centred on the asset's own median, in
    units of each sensor's robust spread within an asset; condition sensors are NaN."""
    cond = history.condition
    running = [blank_down(a) for a in history.assets]
    if not running:
        return []
    allrows = np.vstack(running)
    norm = ConditionNormalizer(cond).fit(allrows) if cond else None
    resid = [norm.transform(v) if norm is not None else v.copy() for v in running]
    # each sensor's spread within an asset (what a detector that learns each asset's own normal
    # sees), pooled over the assets: unit-to-unit offsets are not noise
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        centred = [r - np.nanmedian(r, axis=0) for r in resid]
        spread = np.vstack([1.4826 * np.nanmedian(np.abs(c), axis=0) for c in centred])
        scale = np.nanmedian(spread, axis=0)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, np.nan)
    out = []
    for c in centred:
        z = c / scale
        if cond:
            z[:, cond] = np.nan
        out.append(z)
    return out


def _mean_rows(z: np.ndarray, lo: int, hi: int, want: int, from_end: bool) -> np.ndarray | None:
    """Mean of the first (or last) ``want`` rows of ``z[lo:hi]`` that have data; None if fewer
    than half of them exist."""
    rows = z[max(lo, 0):max(hi, 0)]
    ok = np.isfinite(rows).any(axis=1)
    rows = rows[ok]
    rows = rows[-want:] if from_end else rows[:want]
    if len(rows) < max(want // 2, 1):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # condition sensors: all NaN
        return np.nanmean(rows, axis=0)


def shifts(history: ModelHistory, *, pre_h: int = 24, base_h: int = 72) -> dict[str, np.ndarray]:
    """Per predictable mode: float[n_failures, n_sensors], each failure's shift in noise units
    (mean z over the ``pre_h`` running hours before it minus the first ``base_h`` of its life)."""
    zs = _zscores(history)
    out: dict[str, list] = {}
    for a, z in zip(history.assets, zs):
        # lives start at the data's start and after each repair or failure
        starts = sorted([r - a.start_h for r in a.repairs] + [t - a.start_h for t, _ in a.failures])
        for t, mode in a.failures:
            if not history.is_predictable(mode):
                continue
            end = int(np.floor(t - a.start_h))
            begin = max([s for s in starts if s < end - 1] + [0.0])
            begin = int(np.ceil(begin))
            base = _mean_rows(z, begin, end - pre_h, base_h, from_end=False)
            pre = _mean_rows(z, end - pre_h, end, pre_h, from_end=True)
            if base is None or pre is None:
                continue
            out.setdefault(mode, []).append(pre - base)
    return {m: np.vstack(v) for m, v in out.items()}


def learn(history: ModelHistory, *, pre_h: int = 24, base_h: int = 72, min_shift: float = 3.0,
          min_weight: float = 0.1, min_agree: float = 2 / 3) -> dict[str, Learned]:
    """Signatures of the predictable modes with a usable failure in ``history``.

    Each failure's shift is scaled by its own largest magnitude (a failure caught early and
    one run to the end weigh alike); one that moved nothing by ``min_shift`` noise units is
    left out (nothing visible before it). The signature is the median over the failures, kept
    on the sensors whose median weight is at least ``min_weight`` and whose shift has the
    median's sign in at least ``min_agree`` of the failures (one odd failure, e.g. a life that
    began already degraded, does not flip or invent a sensor), scaled to a largest magnitude of 1."""
    out = {}
    for mode, d in shifts(history, pre_h=pre_h, base_h=base_h).items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)      # condition sensors: all NaN
            top = np.nanmax(np.abs(d), axis=1)
            visible = np.isfinite(top) & (top >= min_shift)
            units = d[visible] / top[visible, None]
            med = np.nanmedian(units, axis=0) if len(units) else np.full(d.shape[1], np.nan)
            agree = (np.mean(np.sign(units) == np.sign(med), axis=0) if len(units)
                     else np.zeros(d.shape[1]))
        keep = np.isfinite(med) & (np.abs(med) >= min_weight) & (agree >= min_agree)
        weights = {}
        if keep.any():
            scale = np.max(np.abs(med[keep]))
            weights = {history.sensors[j]: round(float(med[j] / scale), 4) for j in np.flatnonzero(keep)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean_shift = np.nanmean(d, axis=0)
        out[mode] = Learned(weights, int(visible.sum()), {
            "shift_z": {s: round(float(v), 3) for s, v in zip(history.sensors, mean_shift) if np.isfinite(v)},
            "failures": int(len(d)), "pre_h": pre_h, "base_h": base_h, "min_shift": min_shift})
    return out


def save(conn: psycopg.Connection, model_id: str, learned: dict[str, Learned]) -> None:
    """Store (replace) the learned signatures of ``model_id``'s modes."""
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO learned_signatures (model_id, mode, signature, events, detail, trained_at)
               VALUES (%s, %s, %s, %s, %s, now())
               ON CONFLICT (model_id, mode) DO UPDATE SET signature = EXCLUDED.signature,
                   events = EXCLUDED.events, detail = EXCLUDED.detail, trained_at = now()""",
            [(model_id, mode, Jsonb(s.signature), s.events, Jsonb({**s.detail, "used": usable(s)}))
             for mode, s in learned.items()])


def load(conn: psycopg.Connection, model_id: str | None = None) -> dict[tuple[str, str], Learned]:
    """Learned signatures, ``{(model_id, mode): Learned}``."""
    rows = conn.execute(
        "SELECT model_id, mode, signature, events, detail FROM learned_signatures "
        "WHERE %(m)s::text IS NULL OR model_id = %(m)s", {"m": model_id}).fetchall()
    return {(m, f): Learned(dict(sig), int(n), dict(det)) for m, f, sig, n, det in rows}


def usable(learned: Learned | None) -> bool:
    """Whether detection should use the learned signature instead of the manufacturer's directions."""
    return learned is not None and learned.events >= MIN_EVENTS and bool(learned.signature)
