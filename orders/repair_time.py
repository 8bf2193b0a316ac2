"""The predictive distribution of an order's repair time (hours from the technician on site to
the asset restored), as the SLA breach probability needs it: a survival function.

Sources, first that applies:

1. the MTTR model (``detection.mttr``, owned by the ``mttr`` stream: ``quantiles`` of a model
   fitted on completed repairs) when it provides ``predicted_quantiles(conn, asset_id, mode,
   qs, **context)``;
2. ``empirical``: the quantiles of the platform's own completed repairs of the same product
   model and failure mode finished before the time asked about, when there are at least
   ``MIN_HISTORY`` (30) of them;
3. ``nominal``: an honest wide prior from the service manual: a lognormal with median = the
   failure mode's nominal ``mttr_h`` and ``PRIOR_SIGMA`` = 0.75 (a 90 % interval of ×/÷ 3.4
   around the nominal time). The prior is not fitted to anything; it is deliberately wide.

>>> rt = RepairTime.lognormal(median_h=4.0, sigma=0.75)
>>> round(rt.sf(4.0), 2), rt.sf(0.0), rt.sf(1e6) < 1e-6
(0.5, 1.0, True)
>>> round(float(rt.quantile(0.5)), 3)
4.0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

PRIOR_SIGMA = 0.75
MIN_HISTORY = 30
#: The grid of probabilities a distribution is held on.
QS = np.round(np.linspace(0.01, 0.99, 99), 2)


@dataclass(frozen=True)
class RepairTime:
    """A distribution held as quantiles ``values`` at probabilities ``qs`` (increasing), with
    lognormal tails fitted to the outer quantiles."""

    qs: np.ndarray
    values: np.ndarray
    source: str

    @classmethod
    def lognormal(cls, median_h: float, sigma: float = PRIOR_SIGMA, source: str = "nominal") -> RepairTime:
        return cls(QS, median_h * np.exp(sigma * stats.norm.ppf(QS)), source)

    @classmethod
    def from_history(cls, hours, source: str = "empirical") -> RepairTime:
        return cls(QS, np.quantile(np.asarray(hours, dtype=float), QS), source)

    def quantile(self, q):
        return np.interp(q, self.qs, self.values)

    def sf(self, h: float) -> float:
        """P(repair time > h)."""
        if h <= 0:
            return 1.0
        v = np.maximum.accumulate(np.maximum(self.values, 1e-9))
        if h < v[0] or h > v[-1]:        # tails: a lognormal through the 1st/99th and 10th/90th
            lo, hi = np.log(np.interp([0.1, 0.9], self.qs, v))
            z = stats.norm.ppf(0.9)
            mu, s = (lo + hi) / 2, max((hi - lo) / (2 * z), 1e-6)
            return float(stats.norm.sf((np.log(h) - mu) / s))
        return float(1.0 - np.interp(h, v, self.qs))

    @property
    def median(self) -> float:
        return float(self.quantile(0.5))


def for_order(conn, asset_id: str, mode: str, before=None, **context) -> RepairTime:
    """The repair-time distribution for an order of ``asset_id`` and ``mode``, from what was
    known ``before`` (default: everything recorded)."""
    try:
        from detection import mttr as model
        fn = getattr(model, "predicted_quantiles", None)
    except ImportError:
        fn = None
    if fn is not None:
        try:
            values = np.asarray(fn(conn, asset_id, mode, QS, **context), dtype=float)
            if values.shape == QS.shape and np.all(np.isfinite(values)):
                return RepairTime(QS, values, "model")
        except (LookupError, ValueError):
            pass
    hours = [r[0] for r in conn.execute(
        """SELECT extract(epoch FROM r.finished_at - r.started_at) / 3600.0
           FROM repairs r JOIN assets a ON a.asset_id = r.asset_id
           WHERE a.model_id = (SELECT model_id FROM assets WHERE asset_id = %(a)s) AND r.mode = %(m)s
             AND (%(before)s::timestamptz IS NULL OR r.finished_at < %(before)s)
           ORDER BY r.finished_at DESC LIMIT 2000""", {"a": asset_id, "m": mode, "before": before}).fetchall()]
    if len(hours) >= MIN_HISTORY:
        return RepairTime.from_history(hours)
    row = conn.execute(
        "SELECT fm.mttr_h FROM assets a JOIN failure_modes fm ON fm.model_id = a.model_id AND fm.mode = %s "
        "WHERE a.asset_id = %s", (mode, asset_id)).fetchone()
    return RepairTime.lognormal(float(row[0]) if row else 4.0)
