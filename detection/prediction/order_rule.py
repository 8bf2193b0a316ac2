"""When a predicted probability of failure opens a service order: one order per asset, on the
first row its ``p_fail`` reaches the threshold, optionally only once that risk has *risen*.

A slowly rising risk crosses a low threshold weeks before a failure; the risk of a drive that
is about to fail usually jumps in its last days. With ``rise_rows = k > 0`` a row may open an
order only if its ``p_fail`` is at least ``rise_factor`` times the lowest ``p_fail`` of the
``k`` rows before it (at least one earlier row is needed; fewer than ``k`` are used at the start
of a history). ``rise_rows = 0`` is the plain rule: the first crossing.

A 7-day ``p_fail`` is about as high a week ahead as a day ahead. With ``urgency = a > 0`` the
rule also weighs the predictor's own remaining-life estimate: the risk it orders on is
``p_fail * (urgency_h / (rul_h + urgency_h)) ** a`` (``p_fail`` itself when the failure is
predicted now, half of it per ``a`` when it is ``urgency_h`` away), so of two assets equally
likely to fail within the horizon the one whose failure is predicted sooner orders first. The
rise condition applies to that risk. ``urgency = 0`` ignores the remaining life.
``urgency_from_h = T`` discounts only a remaining life beyond ``T`` hours: the weight is
``min(1, ((T + urgency_h) / (rul_h + urgency_h)) ** a)``, so with ``T`` the horizon a threshold
keeps its meaning for an asset whose failure is predicted within the horizon (with ``T = 0``
a threshold of 0.5 needs ``p_fail`` 0.5 *and* a failure predicted within the hour).

>>> import numpy as np
>>> p = np.array([0.2, 0.3, 0.3, 0.35, 0.9])
>>> OrderRule(threshold=0.25).first_order(p)              # plain: the first crossing
1
>>> OrderRule(threshold=0.25, rise_rows=2, rise_factor=2.0).first_order(p)   # waits for the jump
4
>>> OrderRule(threshold=0.25, rise_rows=2).order_score(p).round(2).tolist()
[0.0, 0.0, 0.0, 0.0, 0.9]
>>> rul_h = np.array([500.0, 400.0, 300.0, 24.0, 0.0])            # hours to the predicted failure
>>> OrderRule(threshold=0.25, urgency=1.0).risk(p, rul_h).round(3).tolist()
[0.009, 0.017, 0.022, 0.175, 0.9]
>>> OrderRule(threshold=0.25, urgency=1.0).first_order(p, rul_h)
4
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OrderRule:
    threshold: float = 0.5   # p_fail that opens an order
    rise_rows: int = 0       # rows the risk must have risen over (0: no rise needed)
    rise_factor: float = 2.0  # ... by this factor over its lowest in those rows
    urgency: float = 0.0     # exponent of the remaining-life weight (0: p_fail alone)
    urgency_h: float = 24.0  # hours of remaining life that halve the weight (per unit of urgency)
    urgency_from_h: float = 0.0  # remaining life (hours) up to which the weight stays 1

    def __post_init__(self):
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.rise_rows < 0 or int(self.rise_rows) != self.rise_rows:
            raise ValueError(f"rise_rows must be a whole number >= 0, got {self.rise_rows}")
        if not self.rise_factor >= 1:
            raise ValueError(f"rise_factor must be >= 1, got {self.rise_factor}")
        if not self.urgency >= 0 or not np.isfinite(self.urgency):
            raise ValueError(f"urgency must be a finite number >= 0, got {self.urgency}")
        if not self.urgency_h > 0 or not np.isfinite(self.urgency_h):
            raise ValueError(f"urgency_h must be a finite number of hours > 0, got {self.urgency_h}")
        if not self.urgency_from_h >= 0 or not np.isfinite(self.urgency_from_h):
            raise ValueError(f"urgency_from_h must be a finite number of hours >= 0, got {self.urgency_from_h}")

    def describe(self, row: str = "row") -> str:
        """The rule in words, ``row`` naming a row's span (``"h"`` for the service's hourly rows).

        >>> OrderRule(0.5, 2, 5.0, urgency=2.0, urgency_from_h=336).describe("h")
        'p_fail >= 0.5 once risen 5-fold over the last 2 h, weighted by the predicted time to failure beyond 336 h (urgency 2)'
        """
        text = f"p_fail >= {self.threshold:g}"
        if self.rise_rows:
            text += f" once risen {self.rise_factor:g}-fold over the last {self.rise_rows} {row}"
        if self.urgency:
            text += (f", weighted by the predicted time to failure beyond {self.urgency_from_h:g} h"
                     f" (urgency {self.urgency:g})")
        return text

    def risk(self, p, rul_h=None) -> np.ndarray:
        """The risk the rule orders on, per row: ``p_fail``, weighted by the remaining life
        ``rul_h`` (hours, same length) when ``urgency > 0``."""
        p = _check(p)
        if self.urgency == 0:
            return p
        if rul_h is None:
            raise ValueError("an order rule with urgency > 0 needs the predicted remaining life (rul_h) of every row")
        r = _check(rul_h, "remaining life (rul_h)")
        if r.shape != p.shape:
            raise ValueError(f"rul_h has {len(r)} rows but p_fail has {len(p)}")
        r = np.maximum(r, 0.0)
        weight = ((self.urgency_from_h + self.urgency_h) / (r + self.urgency_h)) ** self.urgency
        return p * np.minimum(weight, 1.0)

    def risen(self, p, rul_h=None) -> np.ndarray:
        """Per row of an asset's ``p_fail`` history (oldest first; ``rul_h`` alongside when
        ``urgency > 0``): may this row open an order (its risk has risen enough over the rows
        before it)? All True when ``rise_rows = 0``."""
        return self._risen(self.risk(p, rul_h))

    def _risen(self, p: np.ndarray) -> np.ndarray:
        """:meth:`risen` of a row's risk (:meth:`risk`)."""
        k = int(self.rise_rows)
        if k == 0:
            return np.ones(len(p), bool)
        low = np.full(len(p), np.inf)
        for lag in range(1, k + 1):              # the lowest of the k rows before each row
            low[lag:] = np.minimum(low[lag:], p[:-lag])
        return np.isfinite(low) & (p >= self.rise_factor * low)

    def order_score(self, p, rul_h=None) -> np.ndarray:
        """The risk where the row may open an order, else 0: an order opens on the first row
        whose score reaches the threshold (so a sweep of thresholds ranks assets by the peak
        of this score)."""
        risk = self.risk(p, rul_h)
        return np.where(self._risen(risk), risk, 0.0)

    def first_order(self, p, rul_h=None) -> int | None:
        """The row that opens the asset's order, or None."""
        return first_crossing(self.order_score(p, rul_h), self.threshold)


def first_crossing(score: np.ndarray, threshold: float) -> int | None:
    """The first row whose ``score`` reaches ``threshold``, or None (an order rule's order row on
    its :meth:`OrderRule.order_score`)."""
    hit = np.flatnonzero(score >= threshold)
    return int(hit[0]) if hit.size else None


def _check(p, what: str = "p_fail") -> np.ndarray:
    a = np.asarray(p, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{what} history must be one-dimensional, got shape {a.shape}")
    if np.isnan(a).any():
        raise ValueError(f"{what} history holds NaN (the predictor gives a value for every row)")
    return a
