"""Robust z-score: distance from a streaming median in units of a streaming MAD (1.4826 MAD ~
one standard deviation); the score is the largest ``|z|``. One wild value moves neither estimate
by more than a small step, and values with ``|z| > learn_clip`` are not learned at all.

>>> import numpy as np
>>> from detection.anomaly.mad import RobustZScore
>>> rng = np.random.default_rng(7)
>>> det = RobustZScore(lr=0.02, warmup=30)
>>> for v in rng.standard_t(3, 2000):
...     det.learn_one({"vibration": v})
>>> det.score_one({"vibration": 0.3}) < 1.0, det.score_one({"vibration": 15.0}) > 8.0
(True, True)
"""

from __future__ import annotations

from detection.anomaly.base import PerSensor
from detection.kernels import ewma, robust


class RobustZScore(PerSensor):
    width = 4   # centre, mad, and the warm-up mean/var that seed them
    _params = ("lr", "warmup", "learn_clip", "eps_rel")

    def __init__(self, lr: float = 0.01, warmup: int = 30, learn_clip: float = 4.0, eps_rel: float = 1e-4):
        super().__init__()
        if not 0.0 < lr <= 1.0 or warmup < 2 or learn_clip <= 0:
            raise ValueError("need 0 < lr <= 1, warmup >= 2, learn_clip > 0")
        self.lr, self.warmup, self.learn_clip, self.eps_rel = lr, warmup, learn_clip, eps_rel

    def _z(self, j: int, v: float) -> float:
        return float(robust.score(self._state[j, :2], v, 1e-9, self.eps_rel))

    def score_one(self, x: dict) -> float:
        return max((abs(self._z(j, v)) for j, v in self._values(x, False) if self._n[j] >= self.warmup), default=0.0)

    def learn_one(self, x: dict) -> None:
        for j, v in self._values(x, True):
            n = int(self._n[j])
            st = self._state[j]
            if n < self.warmup:
                ewma.learn(st[2:], v, ewma.weight(self.lr, 1.0, n))
                robust.init_from_moments(st[:2], st[2], st[3])
            elif abs(self._z(j, v)) > self.learn_clip:
                continue
            else:
                robust.learn(st[:2], v, self.lr, 1e-9, self.eps_rel)
            self._n[j] = n + 1
