"""Two-sided CUSUM per sensor over robust z-scores: small persistent shifts add up until they
stand out, where a single reading would not. The score is the largest CUSUM statistic; the
baseline (streaming median/MAD) does not learn values beyond ``learn_clip``.

>>> import numpy as np
>>> from detection.anomaly.cusum import CUSUM
>>> rng = np.random.default_rng(3)
>>> det = CUSUM(k=0.5, warmup=50)
>>> for v in rng.normal(0.0, 1.0, 500):
...     det.learn_one({"pressure": v})
>>> before = det.score_one({"pressure": 0.0})
>>> for v in rng.normal(1.5, 1.0, 30):          # a 1.5-sigma shift: no single value is alarming
...     det.learn_one({"pressure": v})
>>> before < 3.0, det.score_one({"pressure": 1.5}) > 15.0
(True, True)
"""

from __future__ import annotations

import numpy as np

from detection.anomaly.mad import RobustZScore
from detection.kernels import cusum


class CUSUM(RobustZScore):
    width = 6   # robust state (4) + upper, lower sums
    _params = ("k", "clip", "lr", "warmup", "learn_clip")

    def __init__(self, k: float = 0.5, clip: float = 6.0, lr: float = 0.01, warmup: int = 30, learn_clip: float = 4.0):
        super().__init__(lr=lr, warmup=warmup, learn_clip=learn_clip)
        if k <= 0 or clip <= 0:
            raise ValueError("need k > 0 and clip > 0")
        self.k, self.clip = k, clip

    def _sums(self, j: int, v: float, st) -> float:
        zc = float(np.clip(self._z(j, v), -self.clip, self.clip))
        return float(cusum.update(st, zc, self.k))

    def score_one(self, x: dict) -> float:
        return max((self._sums(j, v, self._state[j, 4:].copy()) for j, v in self._values(x, False)
                    if self._n[j] >= self.warmup), default=0.0)

    def learn_one(self, x: dict) -> None:
        for j, v in self._values(x, True):
            if self._n[j] >= self.warmup:
                self._sums(j, v, self._state[j, 4:])
        super().learn_one(x)
