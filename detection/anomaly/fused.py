"""The fused detector for one device: every kernel of :class:`detection.fleet.FleetDetector`
(EWMA and robust z, CUSUM, Mahalanobis) combined into one score in [0, 1], the
Bonferroni-adjusted smallest tail probability on a log scale. Flagged readings are not learned.

>>> import numpy as np
>>> from detection.anomaly.fused import FusedDetector
>>> from detection.fleet import FleetConfig
>>> rng = np.random.default_rng(0)
>>> det = FusedDetector(["rpm", "temp"], FleetConfig(warmup=30))
>>> for v in rng.normal(size=(400, 2)):
...     det.learn_one({"rpm": v[0], "temp": v[1]})
>>> det.score_one({"rpm": 0.1, "temp": -0.2}) < 0.3, det.score_one({"rpm": 0.1, "temp": 11.0}) > 0.5
(True, True)
"""

from __future__ import annotations

import numpy as np

from detection.anomaly.base import AnomalyDetector
from detection.fleet import FleetConfig, FleetDetector

_ZERO = np.zeros(1, dtype=np.int64)


class FusedDetector(AnomalyDetector):
    _params = ("sensors", "config")

    def __init__(self, sensors: list[str], config: FleetConfig | None = None):
        if not sensors or len(set(sensors)) != len(sensors):
            raise ValueError("sensors must be a non-empty list of distinct names")
        self.sensors = list(sensors)
        self.config = config or FleetConfig()
        self._det = FleetDetector(len(self.sensors), self.config, capacity=1)

    def _row(self, x: dict) -> np.ndarray:
        row = np.full((1, len(self.sensors)), np.nan)
        for j, name in enumerate(self.sensors):
            v = x.get(name)
            if v is not None:
                v = float(v)
                row[0, j] = v if np.isfinite(v) else np.nan
        return row

    def score_one(self, x: dict) -> float:
        probe = self._det.copy()                                  # score on a copy: no learning
        f = probe.update_rows(_ZERO, self._row(x)).fused[0]
        return 0.0 if np.isnan(f) else float(f)

    def learn_one(self, x: dict) -> None:
        self._det.update_rows(_ZERO, self._row(x))
