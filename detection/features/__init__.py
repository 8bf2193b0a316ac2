"""Feature kernels over rolling windows of sensor readings (level, spread, slope, mean
crossings, rise of a counter, exponentially weighted mean, regime-normalised values, deviation from the unit's
own baseline), each an ``@njit`` kernel in
its own module with a plain NumPy reference in :mod:`detection.features.reference`, and the
pipeline that turns a reading matrix into a feature matrix (:mod:`detection.features.pipeline`).
"""

from detection.features.baseline import baseline_delta
from detection.features.crossings import rolling_crossing_rate
from detection.features.ewm import ewm_mean
from detection.features.regime import regime_stats, regime_zscore
from detection.features.rolling_level import rolling_mean
from detection.features.rolling_rise import rolling_rise
from detection.features.rolling_slope import rolling_slope
from detection.features.rolling_spread import rolling_std

__all__ = [
    "baseline_delta",
    "ewm_mean",
    "regime_stats",
    "regime_zscore",
    "rolling_crossing_rate",
    "rolling_mean",
    "rolling_rise",
    "rolling_slope",
    "rolling_std",
]
