"""Mean time to repair: actual (from the repairs table) and predicted for an order.

The prediction for a (product model, failure mode) is the mean repair duration recorded for it,
shrunk toward the failure mode's nominal repair time (``failure_modes.mttr_h``) with the weight
of ``prior_weight`` repairs, so a pair with few repairs is not predicted from one outlier.

>>> est = MttrEstimator(prior_weight=2).fit([("P", "seal_leak", 10.0), ("P", "seal_leak", 14.0)],
...                                         {("P", "seal_leak"): 6.0})
>>> est.predict("P", "seal_leak")        # (10 + 14 + 2 * 6) / (2 + 2)
9.0
>>> est.predict("P", "fouling", default=5.0)
5.0
"""

from __future__ import annotations

from collections import defaultdict

import psycopg


class MttrEstimator:
    def __init__(self, prior_weight: float = 3.0):
        self.prior_weight = prior_weight

    def fit(self, repairs, priors: dict[tuple[str, str], float]) -> "MttrEstimator":
        """``repairs``: iterable of (model_id, mode, duration_h)."""
        sums: dict = defaultdict(float)
        counts: dict = defaultdict(int)
        for model_id, mode, hours in repairs:
            if hours is None or hours < 0:
                continue
            sums[(model_id, mode)] += float(hours)
            counts[(model_id, mode)] += 1
        self.priors_ = dict(priors)
        self.n_ = dict(counts)
        self.mttr_ = {}
        for key in set(priors) | set(counts):
            k = self.prior_weight if key in priors else 0.0
            self.mttr_[key] = (sums[key] + k * priors.get(key, 0.0)) / (counts[key] + k)
        return self

    def predict(self, model_id: str, mode: str, default: float | None = None) -> float | None:
        return self.mttr_.get((model_id, mode), default)

    @classmethod
    def from_db(cls, conn: psycopg.Connection, prior_weight: float = 3.0) -> "MttrEstimator":
        priors = {(m, f): float(h) for m, f, h in conn.execute("SELECT model_id, mode, mttr_h FROM failure_modes")}
        rows = conn.execute(
            "SELECT a.model_id, r.mode, extract(epoch FROM r.finished_at - r.started_at) / 3600.0 "
            "FROM repairs r JOIN assets a USING (asset_id)").fetchall()
        return cls(prior_weight).fit(rows, priors)
