"""The predictive distribution of an order's repair time (hours from the technician on site to
the asset restored), as the SLA breach probability needs it: a survival function.

Source: the MTTR model in force (:mod:`detection.mttr`: fitted on completed repairs, a conformal
predictive system per model and mode with the service manual's wide fallback when repairs are
few), asked for its quantiles at :data:`QS` for the order's asset (model, site, region), mode,
kind and, when the visit is planned, its start. Extreme quantiles the model leaves open (0 or
inf for small calibration sets) are filled by a lognormal through the two nearest quantiles
it gave, and beyond the grid the tails are lognormal through its two outermost quantiles. Only when the model has no answer for the mode at all does the nominal prior
apply: a lognormal with median = the failure mode's nominal ``mttr_h`` and ``PRIOR_SIGMA`` =
0.75 (a 90 % interval of ×/÷ 3.4), not fitted to anything, deliberately wide.

>>> rt = RepairTime.lognormal(median_h=4.0, sigma=0.75)
>>> round(rt.sf(4.0), 2), rt.sf(0.0), rt.sf(1e6) < 1e-6
(0.5, 1.0, True)
>>> round(float(rt.quantile(0.5)), 3)
4.0
>>> v = rt.values.copy(); v[-3:], v[:2] = np.inf, 0.0      # extremes the model left open
>>> bool(np.allclose(RepairTime.from_quantiles(v, "model").values, rt.values))
True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from scipy import stats

PRIOR_SIGMA = 0.75
#: The grid of probabilities a distribution is held on.
QS = np.round(np.linspace(0.01, 0.99, 99), 2)
_Z90 = stats.norm.ppf(0.9)


@dataclass(frozen=True)
class RepairTime:
    """A distribution held as quantiles ``values`` at probabilities ``qs`` (increasing), with
    lognormal tails beyond them."""

    qs: np.ndarray
    values: np.ndarray
    source: str

    @classmethod
    def lognormal(cls, median_h: float, sigma: float = PRIOR_SIGMA, source: str = "nominal") -> RepairTime:
        return cls(QS, median_h * np.exp(sigma * stats.norm.ppf(QS)), source)

    @classmethod
    def from_quantiles(cls, values, source: str) -> RepairTime | None:
        """From quantiles at :data:`QS`; None unless the 10 %, 50 % and 90 % ones are finite and
        positive. Open extremes (0 or inf) are filled by a lognormal through the two nearest
        quantiles given."""
        v = np.asarray(values, dtype=float)
        lo, med, hi = np.interp([0.1, 0.5, 0.9], QS, np.where(np.isfinite(v), v, np.nan))
        if not (np.isfinite([lo, med, hi]).all() and 0 < lo <= med <= hi):
            return None
        ok = np.flatnonzero(np.isfinite(v) & (v > 0))
        z = stats.norm.ppf(QS)
        for a, b, side in ((ok[-2], ok[-1], QS > QS[ok[-1]]), (ok[0], ok[1], QS < QS[ok[0]])):
            # open extremes: a lognormal through the two nearest quantiles the model gave
            s = max((np.log(v[b]) - np.log(v[a])) / (z[b] - z[a]), 1e-6)
            v = np.where(side, np.exp(np.log(v[b]) + s * (z - z[b])), v)
        return cls(QS, np.maximum.accumulate(v), source)

    def quantile(self, q):
        return np.interp(q, self.qs, self.values)

    def sf(self, h: float) -> float:
        """P(repair time > h). Beyond the grid, a lognormal tail through the two outermost
        grid quantiles on that side (1 % and 10 %, or 90 % and 99 %): the tail keeps the
        distribution's own local shape."""
        if h <= 0:
            return 1.0
        v = np.maximum.accumulate(np.maximum(self.values, 1e-9))
        if h < v[0] or h > v[-1]:
            qa, qb = (self.qs[0], 0.1) if h < v[0] else (0.9, self.qs[-1])
            la, lb = np.log(np.interp([qa, qb], self.qs, v))
            za, zb = stats.norm.ppf([qa, qb])
            s = max((lb - la) / (zb - za), 1e-6)
            return float(stats.norm.sf((np.log(h) - (la - s * za)) / s))
        return float(1.0 - np.interp(h, v, self.qs))

    @property
    def median(self) -> float:
        return float(self.quantile(0.5))


def for_order(conn, asset_id: str, mode: str, *, kind: str = "corrective", start: datetime | None = None,
              model=None) -> RepairTime:
    """The repair-time distribution for an order of ``asset_id`` and ``mode`` (``start``: the
    planned start of work, if known); ``model`` an MTTR model to use instead of the one in force."""
    return for_orders(conn, [(asset_id, mode, kind, start)], model=model)[0]


def for_orders(conn, orders: list[tuple[str, str, str, datetime | None]], *, model=None) -> list[RepairTime]:
    """:func:`for_order` for many ``(asset_id, mode, kind, start)`` at once (one model call)."""
    if not orders:
        return []
    assets = {r[0]: r[1:] for r in conn.execute(
        """SELECT a.asset_id, a.model_id, a.site_id, coalesce(s.region, '')
           FROM assets a LEFT JOIN sites s ON s.site_id = a.site_id WHERE a.asset_id = ANY(%s)""",
        (sorted({o[0] for o in orders}),)).fetchall()}
    missing = {o[0] for o in orders} - set(assets)
    if missing:
        raise LookupError(f"no asset {sorted(missing)[0]!r}")
    nominal = {(m, mode): h for m, mode, h in conn.execute(
        "SELECT model_id, mode, mttr_h FROM failure_modes WHERE model_id = ANY(%s)",
        (sorted({a[0] for a in assets.values()}),)).fetchall()}
    rows = []
    for asset_id, mode, kind, start in orders:
        model_id, site_id, region = assets[asset_id]
        row = {"model_id": model_id, "mode": mode, "site_id": site_id, "region": region,
               "kind": kind if kind in ("corrective", "predictive", "preventive") else "corrective"}
        if start is not None:
            row["start"] = start
        rows.append(row)
    out: list[RepairTime | None] = [None] * len(rows)
    # the model in force, looked up now: the stored one takes the manual's figures of product
    # models registered since it was fitted (detection.mttr.store.load)
    from detection.mttr import MttrCache          # (detection imports orders: import here)
    m = model if model is not None else MttrCache(conn, check_every_s=0.0).model
    try:
        for k, q in enumerate(m.quantiles(rows, QS)):
            out[k] = RepairTime.from_quantiles(q, "model")
    except (LookupError, ValueError):
        pass
    return [rt if rt is not None else
            RepairTime.lognormal(float(nominal.get((r["model_id"], r["mode"])) or PRIOR_NOMINAL_H))
            for rt, r in zip(out, rows)]


#: The prior's median for a mode the manual gives no time for (a preventive service, say).
PRIOR_NOMINAL_H = 4.0
