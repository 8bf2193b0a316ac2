"""When a predicted probability of failure opens a service order: one order per asset, on the
first row its ``p_fail`` reaches the threshold, optionally only once that risk has *risen*.

A slowly rising risk crosses a low threshold weeks before a failure; the risk of a drive that
is about to fail usually jumps in its last days. With ``rise_rows = k > 0`` a row may open an
order only if its ``p_fail`` is at least ``rise_factor`` times the lowest ``p_fail`` of the
``k`` rows before it (at least one earlier row is needed; fewer than ``k`` are used at the start
of a history). ``rise_rows = 0`` is the plain rule: the first crossing.

>>> import numpy as np
>>> p = np.array([0.2, 0.3, 0.3, 0.35, 0.9])
>>> OrderRule(threshold=0.25).first_order(p)              # plain: the first crossing
1
>>> OrderRule(threshold=0.25, rise_rows=2, rise_factor=2.0).first_order(p)   # waits for the jump
4
>>> OrderRule(threshold=0.25, rise_rows=2).order_score(p).round(2).tolist()
[0.0, 0.0, 0.0, 0.0, 0.9]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OrderRule:
    threshold: float = 0.5   # p_fail that opens an order
    rise_rows: int = 0       # rows the risk must have risen over (0: no rise needed)
    rise_factor: float = 2.0  # ... by this factor over its lowest in those rows

    def __post_init__(self):
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.rise_rows < 0 or int(self.rise_rows) != self.rise_rows:
            raise ValueError(f"rise_rows must be a whole number >= 0, got {self.rise_rows}")
        if not self.rise_factor >= 1:
            raise ValueError(f"rise_factor must be >= 1, got {self.rise_factor}")

    def risen(self, p) -> np.ndarray:
        """Per row of an asset's ``p_fail`` history (oldest first): may this row open an order
        (its risk has risen enough over the rows before it)? All True when ``rise_rows = 0``."""
        p = _check(p)
        k = int(self.rise_rows)
        if k == 0:
            return np.ones(len(p), bool)
        low = np.full(len(p), np.inf)
        for lag in range(1, k + 1):              # the lowest of the k rows before each row
            low[lag:] = np.minimum(low[lag:], p[:-lag])
        return np.isfinite(low) & (p >= self.rise_factor * low)

    def order_score(self, p) -> np.ndarray:
        """``p_fail`` where the row may open an order, else 0: an order opens on the first row
        whose score reaches the threshold (so a sweep of thresholds ranks assets by the peak
        of this score)."""
        p = _check(p)
        return np.where(self.risen(p), p, 0.0)

    def first_order(self, p) -> int | None:
        """The row that opens the asset's order, or None."""
        hit = np.flatnonzero(self.order_score(p) >= self.threshold)
        return int(hit[0]) if hit.size else None


def _check(p) -> np.ndarray:
    a = np.asarray(p, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"p_fail history must be one-dimensional, got shape {a.shape}")
    if np.isnan(a).any():
        raise ValueError("p_fail history holds NaN (the predictor gives a probability for every row)")
    return a
