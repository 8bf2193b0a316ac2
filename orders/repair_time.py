"""The predictive distribution of an order's repair time (hours from the technician on site to
the asset restored), as the SLA breach probability needs it: a survival function.

Source: the MTTR model in force (:mod:`detection.mttr`: fitted on completed repairs, a conformal
predictive system per model and mode with the service manual's wide fallback when repairs are
few), asked for its quantiles at :data:`QS` for the order's asset (model, site, region), mode,
kind and, when the visit is planned, its start. Extreme quantiles the model leaves open (0 or
inf for small calibration sets) are filled from a lognormal through its 10 % and 90 %
quantiles. Only when the model has no answer for the mode at all does the nominal prior
apply: a lognormal with median = the failure mode's nominal ``mttr_h`` and ``PRIOR_SIGMA`` =
0.75 (a 90 % interval of ×/÷ 3.4), not fitted to anything, deliberately wide.

>>> rt = RepairTime.lognormal(median_h=4.0, sigma=0.75)
>>> round(rt.sf(4.0), 2), rt.sf(0.0), rt.sf(1e6) < 1e-6
(0.5, 1.0, True)
>>> round(float(rt.quantile(0.5)), 3)
4.0
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from scipy import stats

PRIOR_SIGMA = 0.75
#: The grid of probabilities a distribution is held on.
QS = np.round(np.linspace(0.01, 0.99, 99), 2)
MODEL_CHECK_S = 60.0
_Z90 = stats.norm.ppf(0.9)


@dataclass(frozen=True)
class RepairTime:
    """A distribution held as quantiles ``values`` at probabilities ``qs`` (increasing), with
    lognormal tails through its 10 % and 90 % quantiles."""

    qs: np.ndarray
    values: np.ndarray
    source: str

    @classmethod
    def lognormal(cls, median_h: float, sigma: float = PRIOR_SIGMA, source: str = "nominal") -> RepairTime:
        return cls(QS, median_h * np.exp(sigma * stats.norm.ppf(QS)), source)

    @classmethod
    def from_quantiles(cls, values, source: str) -> RepairTime | None:
        """From quantiles at :data:`QS`; None unless the 10 %, 50 % and 90 % ones are finite and
        positive. Open extremes are filled from the lognormal tail."""
        v = np.asarray(values, dtype=float)
        lo, med, hi = np.interp([0.1, 0.5, 0.9], QS, np.where(np.isfinite(v), v, np.nan))
        if not (np.isfinite([lo, med, hi]).all() and 0 < lo <= med <= hi):
            return None
        mu, s = (np.log(lo) + np.log(hi)) / 2, max((np.log(hi) - np.log(lo)) / (2 * _Z90), 1e-6)
        bad = ~np.isfinite(v) | (v <= 0)
        v = np.where(bad, np.exp(mu + s * stats.norm.ppf(QS)), v)
        return cls(QS, np.maximum.accumulate(v), source)

    def quantile(self, q):
        return np.interp(q, self.qs, self.values)

    def sf(self, h: float) -> float:
        """P(repair time > h)."""
        if h <= 0:
            return 1.0
        v = np.maximum.accumulate(np.maximum(self.values, 1e-9))
        if h < v[0] or h > v[-1]:        # tails: the lognormal through the 10th and 90th
            lo, hi = np.log(np.interp([0.1, 0.9], self.qs, v))
            mu, s = (lo + hi) / 2, max((hi - lo) / (2 * _Z90), 1e-6)
            return float(stats.norm.sf((np.log(h) - mu) / s))
        return float(1.0 - np.interp(h, v, self.qs))

    @property
    def median(self) -> float:
        return float(self.quantile(0.5))


_models: dict[tuple, tuple[float, object]] = {}   # database -> (checked at, model)


def current_model(conn, refresh: bool = False):
    """The MTTR model in force for this database (re-checked every ``MODEL_CHECK_S``, or now
    with ``refresh``)."""
    from detection.mttr import MttrModel, store
    from detection.mttr.history import nominal

    key = (conn.info.host, conn.info.port, conn.info.dbname)
    checked, model = _models.get(key, (-np.inf, None))
    if refresh or model is None or time.monotonic() - checked > MODEL_CHECK_S:
        latest = store.latest_id(conn)
        model = store.load(conn, latest[0]) if latest else MttrModel().fit([], nominal(conn))
        _models[key] = (time.monotonic(), model)
    return model


def for_order(conn, asset_id: str, mode: str, *, kind: str = "corrective", start: datetime | None = None,
              model=None) -> RepairTime:
    """The repair-time distribution for an order of ``asset_id`` and ``mode`` (``start``: the
    planned start of work, if known); ``model`` an MTTR model to use instead of the one in force."""
    row = conn.execute(
        """SELECT a.model_id, a.site_id, coalesce(s.region, ''), fm.mttr_h
           FROM assets a LEFT JOIN sites s ON s.site_id = a.site_id
           LEFT JOIN failure_modes fm ON fm.model_id = a.model_id AND fm.mode = %s
           WHERE a.asset_id = %s""", (mode, asset_id)).fetchone()
    if row is None:
        raise LookupError(f"no asset {asset_id!r}")
    features = {"model_id": row[0], "mode": mode, "kind": kind if kind in ("corrective", "predictive", "preventive")
                else "corrective", "site_id": row[1], "region": row[2]}
    if start is not None:
        features["start"] = start
    # a product model newer than the cached MTTR model: look again once before the prior
    for m in ([model] if model is not None else [current_model(conn), current_model(conn, refresh=True)]):
        try:
            rt = RepairTime.from_quantiles(m.quantiles([features], QS)[0], "model")
        except (LookupError, ValueError):
            rt = None
        if rt is not None:
            return rt
    return RepairTime.lognormal(float(row[3]) if row[3] else PRIOR_NOMINAL_H)


#: The prior's median for a mode the manual gives no time for (a preventive service, say).
PRIOR_NOMINAL_H = 4.0
