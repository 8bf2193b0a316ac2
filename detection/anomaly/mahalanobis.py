"""Streaming Mahalanobis distance of the sensors' robust z-vector: catches readings where each
sensor alone looks normal but their combination does not (a temperature that rises while the
load that usually drives it stays flat). The correlation of the z-vector is learned with
exponential forgetting from unflagged readings only; the score is ``d2 = z' R^-1 z``.

>>> import numpy as np
>>> from detection.anomaly.mahalanobis import StreamingMahalanobis
>>> rng = np.random.default_rng(5)
>>> det = StreamingMahalanobis(warmup=50)
>>> for load in rng.normal(0.0, 1.0, 1500):
...     det.learn_one({"load": load, "temp": load + 0.2 * rng.normal()})
>>> normal = det.score_one({"load": 1.0, "temp": 1.0})
>>> broken = det.score_one({"load": 1.0, "temp": -1.0})    # each within one sigma, together absurd
>>> normal < 3.0, broken > 20.0
(True, True)
"""

from __future__ import annotations

import numpy as np

from detection.anomaly.mad import RobustZScore
from detection.kernels.mahalanobis import inverse_correlation, quad_form, update_comoment
from detection.kernels.tails import chi2_upper


class StreamingMahalanobis(RobustZScore):
    _params = ("alpha", "ridge", "clip", "lr", "warmup", "learn_clip")

    def __init__(self, alpha: float = 0.005, ridge: float = 0.05, clip: float = 6.0, lr: float = 0.01,
                 warmup: int = 30, learn_clip: float = 4.0, flag_p: float = 1e-6):
        super().__init__(lr=lr, warmup=warmup, learn_clip=learn_clip)
        if not 0.0 < alpha <= 1.0 or not 0.0 < ridge <= 1.0:
            raise ValueError("need 0 < alpha <= 1 and 0 < ridge <= 1")
        self.alpha, self.ridge, self.clip, self.flag_p = alpha, ridge, clip, flag_p
        self._C = np.zeros((0, 0))
        self._w = 0.0
        self._rinv: np.ndarray | None = None

    def _zvec(self, x: dict) -> np.ndarray:
        z = np.zeros(len(self._index))
        for j, v in self._values(x, False):
            if self._n[j] >= self.warmup:
                z[j] = np.clip(self._z(j, v), -self.clip, self.clip)
        return z

    def _inverse(self) -> np.ndarray:
        if self._rinv is None or self._rinv.shape[0] != len(self._index):
            k = len(self._index)
            C = self._C / self._w if self._w > 0 and self._C.shape[0] == k else np.eye(k)
            self._rinv = inverse_correlation(C, self.ridge) if k else np.zeros((0, 0))
        return self._rinv

    def score_one(self, x: dict) -> float:
        z = self._zvec(x)
        return float(quad_form(self._inverse(), z, np.empty_like(z)))

    def learn_one(self, x: dict) -> None:
        z = self._zvec(x)
        present = int(np.count_nonzero(z))
        flagged = present >= 2 and chi2_upper(float(quad_form(self._inverse(), z, np.empty_like(z))), present) < self.flag_p
        if not flagged:
            super().learn_one(x)
            z = self._zvec(x) if len(z) != len(self._index) else z
            k = len(self._index)
            if self._C.shape[0] != k:
                C = np.zeros((k, k))
                C[: self._C.shape[0], : self._C.shape[0]] = self._C
                self._C = C
            if present:
                self._C, self._w = update_comoment(self._C, self._w, z[None, :], self.alpha)
            self._rinv = None
