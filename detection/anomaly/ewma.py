"""EWMA z-score: distance of each sensor from its exponentially weighted mean, in standard
deviations; the score is the largest ``|z|``. Values with ``|z| > learn_clip`` are not learned,
so an excursion does not drag the baseline with it.

>>> import numpy as np
>>> from detection.anomaly.ewma import EWMAZScore
>>> rng = np.random.default_rng(42)
>>> det = EWMAZScore(alpha=0.05, warmup=20)
>>> for v in rng.normal(20.0, 1.0, 300):
...     det.learn_one({"temp": v})
>>> det.score_one({"temp": 20.5}) < 2.0, det.score_one({"temp": 29.0}) > 6.0
(True, True)
"""

from __future__ import annotations

from detection.anomaly.base import PerSensor
from detection.kernels import ewma


class EWMAZScore(PerSensor):
    _params = ("alpha", "warmup", "learn_clip", "eps_rel")

    def __init__(self, alpha: float = 0.01, warmup: int = 30, learn_clip: float = 4.0, eps_rel: float = 1e-4):
        super().__init__()
        if not 0.0 < alpha <= 1.0 or warmup < 2 or learn_clip <= 0:
            raise ValueError("need 0 < alpha <= 1, warmup >= 2, learn_clip > 0")
        self.alpha, self.warmup, self.learn_clip, self.eps_rel = alpha, warmup, learn_clip, eps_rel

    def _z(self, j: int, v: float) -> float:
        st = self._state[j]
        return float(ewma.score(st[0], st[1], v, 1e-9, self.eps_rel))

    def score_one(self, x: dict) -> float:
        return max((abs(self._z(j, v)) for j, v in self._values(x, False) if self._n[j] >= self.warmup), default=0.0)

    def learn_one(self, x: dict) -> None:
        for j, v in self._values(x, True):
            n = int(self._n[j])
            if n >= self.warmup and abs(self._z(j, v)) > self.learn_clip:
                continue
            ewma.learn(self._state[j], v, ewma.weight(self.alpha, 1.0, n))
            self._n[j] = n + 1
