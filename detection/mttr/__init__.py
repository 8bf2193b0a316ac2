"""Mean time to repair, predicted with an interval for a repair not yet done.

- :class:`MttrModel` (:mod:`detection.mttr.model`): ``fit(repairs, nominal)``, then
  ``predict(X)`` (hours, the predictive median), ``predict_interval(X, alpha)`` (conformal
  ``(lo, hi)``), ``quantiles(X, qs)`` (the predictive distribution, e.g. for the probability
  that a repair overruns a deadline) on rows of the features in :mod:`detection.mttr.features`.
- :mod:`detection.mttr.store`: fitted from the database's completed repairs, stored in
  ``mttr_models``; refitted by ``prognos train`` and at most hourly by the detection service.
- :func:`predicted_mttr` (median and interval) and :func:`predicted_quantiles` (the
  distribution) for callers that know an asset and a failure mode; :func:`intervals` for many
  rows at once.

The actual MTTR of repairs already done is a report of the API (``service_api/routes/mttr.py``).
"""

from __future__ import annotations

import time

import numpy as np
import psycopg
from scipy.stats import norm

from detection.mttr import store
from detection.mttr.features import CONTEXT, SKILL_LEVELS
from detection.mttr.history import nominal
from detection.mttr.model import MttrModel

__all__ = ["CONTEXT", "SKILL_LEVELS", "MttrCache", "MttrModel", "intervals", "predicted_mttr",
           "predicted_quantiles"]


class MttrCache:
    """The model in force (newest row of ``mttr_models``, re-checked at most every
    ``check_every_s``; the manual's figures alone while none is stored) and the assets'
    model, site and region, for callers that predict often.  ``refit_every_s``: also refit
    and store when the stored model is older than that (the detection service's schedule)."""

    def __init__(self, conn: psycopg.Connection, *, check_every_s: float = 60.0,
                 refit_every_s: float | None = None):
        self.conn = conn
        self.check_every_s = check_every_s
        self.refit_every_s = refit_every_s
        self._checked = -np.inf
        self._id: int | None = None
        self._model: MttrModel | None = None
        self._assets: dict[str, tuple[str, str, str]] = {}

    @property
    def model(self) -> MttrModel:
        now = time.monotonic()
        if self._model is None or now - self._checked >= self.check_every_s:
            self._checked = now
            if self.refit_every_s is not None:
                current = store.refresh(self.conn, max_age_s=self.refit_every_s)
            else:
                latest = store.latest_id(self.conn)
                current = latest[0] if latest else None
            if current is None:
                self._model, self._id = MttrModel().fit([], nominal(self.conn)), None
            else:                                # (load also takes newly registered models)
                self._model, self._id = store.load(self.conn, current), current
            self._assets.clear()
        return self._model

    def asset(self, asset_id: str) -> tuple[str, str, str]:
        """``(model_id, site_id, region)`` of an asset (LookupError if unknown)."""
        if asset_id not in self._assets:
            row = self.conn.execute(
                "SELECT a.model_id, coalesce(a.site_id, ''), coalesce(s.region, '') FROM assets a "
                "LEFT JOIN sites s ON s.site_id = a.site_id WHERE a.asset_id = %s", (asset_id,)).fetchone()
            if row is None:
                raise LookupError(f"no asset {asset_id!r}")
            self._assets[asset_id] = tuple(row)
        return self._assets[asset_id]


def intervals(conn_or_cache: psycopg.Connection | MttrCache, rows: list[dict], *,
              alpha: float = 0.2) -> list[dict]:
    """For each row (features as in :mod:`detection.mttr.features`): ``{"median_h", "lo_h",
    "hi_h", "coverage", "basis"}``, hours rounded to the minute-ish (3 decimals), ``None`` where
    there is no prediction or the interval is unbounded; ``basis`` is the route
    (``group`` / ``mode`` / ``pooled`` / ``manual`` / ``none``, see :meth:`MttrModel.routes`)."""
    cache = conn_or_cache if isinstance(conn_or_cache, MttrCache) else MttrCache(conn_or_cache)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if not rows:
        return []
    model = cache.model
    q = model.quantiles(rows, [0.5, alpha / 2, 1 - alpha / 2])
    basis = model.routes(rows)
    fin = lambda v: round(float(v), 3) if np.isfinite(v) else None  # noqa: E731
    return [{"median_h": fin(m), "lo_h": fin(lo) if np.isfinite(m) else None,
             "hi_h": fin(hi) if np.isfinite(m) else None, "coverage": round(1 - alpha, 3),
             "basis": str(b)} for (m, lo, hi), b in zip(q, basis)]


def _row(cache: MttrCache, asset_id: str, mode: str, context: dict) -> dict:
    unknown = set(context) - {"kind", "skill_level", "parts_on_hand", "start", "hour", "dow"}
    if unknown:
        raise ValueError(f"unknown repair context {sorted(unknown)}; known: kind, skill_level, "
                         "parts_on_hand, start (or hour, dow)")
    model_id, site_id, region = cache.asset(asset_id)
    return {"model_id": model_id, "mode": mode, "site_id": site_id, "region": region, **context}


def _cache(conn_or_cache) -> MttrCache:
    return conn_or_cache if isinstance(conn_or_cache, MttrCache) else MttrCache(conn_or_cache)


def predicted_mttr(conn_or_cache: psycopg.Connection | MttrCache, asset_id: str, mode: str, *,
                   alpha: float = 0.2, **context) -> tuple[float | None, float | None, float | None]:
    """``(median, lo, hi)`` repair hours for ``mode`` on ``asset_id``, ``(lo, hi)`` the
    conformal interval of coverage ``1 - alpha`` (default 80%: 10th to 90th percentile).
    ``context``: what is known of the visit (``kind``, ``skill_level``, ``parts_on_hand``,
    ``start``); the rest is averaged over.  ``(None, None, None)`` when there is neither
    history nor a nominal figure for the mode; ``hi`` None when the interval is unbounded.
    Unknown asset: LookupError; unknown context: ValueError."""
    cache = _cache(conn_or_cache)
    [p] = intervals(cache, [_row(cache, asset_id, mode, context)], alpha=alpha)
    return p["median_h"], p["lo_h"], p["hi_h"]


def predicted_quantiles(conn_or_cache: psycopg.Connection | MttrCache, asset_id: str, mode: str,
                        qs, **context) -> np.ndarray:
    """The predictive distribution of the repair time (hours) at probabilities ``qs``, e.g. for
    the probability that a repair overruns a deadline.  Where the calibration is too small to
    resolve so extreme a quantile (fewer than about 1 / (1 - q) repairs), the tails are
    lognormal through the 10th and 90th percentiles, so every value is finite; all NaN when
    there is no prediction.  Errors as :func:`predicted_mttr`."""
    cache = _cache(conn_or_cache)
    q = np.atleast_1d(np.asarray(qs, dtype=float))
    row = _row(cache, asset_id, mode, context)
    values = cache.model.quantiles([row], q)[0]
    bad = ~np.isfinite(values) | (values <= 0)
    if bad.any() and np.isfinite(values).any():
        lo, hi = np.log(cache.model.quantiles([row], [0.1, 0.9])[0])
        if np.isfinite(lo) and np.isfinite(hi):
            z = norm.ppf(0.9)
            mu, s = (lo + hi) / 2, max((hi - lo) / (2 * z), 1e-6)
            values[bad] = np.exp(mu + s * norm.ppf(q[bad]))
            values = np.maximum.accumulate(values)
    return values
