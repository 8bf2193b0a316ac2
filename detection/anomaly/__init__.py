"""River-style streaming anomaly detectors over a dict of sensor values.

One detector per module, each with ``learn_one(x)`` / ``score_one(x)`` (higher = more
anomalous) over ``{sensor: value}`` (a missing sensor or ``None`` is simply not seen). They run
the same Numba kernels as :class:`detection.fleet.FleetDetector`, one device at a time.
"""

from detection.anomaly.base import AnomalyDetector
from detection.anomaly.context import ContextNovelty
from detection.anomaly.cusum import CUSUM
from detection.anomaly.ewma import EWMAZScore
from detection.anomaly.fused import FusedDetector
from detection.anomaly.mad import RobustZScore
from detection.anomaly.mahalanobis import StreamingMahalanobis

__all__ = ["AnomalyDetector", "CUSUM", "ContextNovelty", "EWMAZScore", "FusedDetector", "RobustZScore", "StreamingMahalanobis"]
