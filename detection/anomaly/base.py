"""The detector interface and the sensor bookkeeping every per-sensor detector shares.

>>> from detection.anomaly.ewma import EWMAZScore
>>> det = EWMAZScore()
>>> isinstance(det, AnomalyDetector)
True
"""

from __future__ import annotations

import abc
import math

import numpy as np


class AnomalyDetector(abc.ABC):
    """``learn_one`` updates the detector, ``score_one`` scores without changing it."""

    @abc.abstractmethod
    def learn_one(self, x: dict) -> None: ...

    @abc.abstractmethod
    def score_one(self, x: dict) -> float: ...

    def clone(self) -> AnomalyDetector:
        """A fresh detector with the same parameters."""
        return type(self)(**self._get_params())

    def _get_params(self) -> dict:
        return {k: getattr(self, k) for k in self._params}

    _params: tuple[str, ...] = ()


class PerSensor(AnomalyDetector):
    """Keeps one state row of ``width`` floats per sensor name, in first-seen order."""

    width = 2

    def __init__(self) -> None:
        self._index: dict = {}
        self._state = np.zeros((0, self.width))
        self._n = np.zeros(0, dtype=np.int64)

    def _values(self, x: dict, grow: bool):
        """(state row, value, sensor position) for every finite value of ``x``."""
        out = []
        for key, v in x.items():
            if v is None:
                continue
            v = float(v)
            if not math.isfinite(v):
                continue
            j = self._index.get(key)
            if j is None:
                if not grow:
                    continue
                j = self._index[key] = len(self._index)
                self._state = np.vstack([self._state, np.zeros((1, self.width))])
                self._n = np.append(self._n, 0)
            out.append((j, v))
        return out
