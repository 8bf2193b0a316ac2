"""From a reading matrix to a feature matrix: for every row, the trailing-window level, spread
and slope of each sensor at several scales (and, with ``rise``, how far it climbed in each
window: the count a counter added), its mean-crossing rate and exponentially weighted
means, and the current reading. Row ``i`` only looks at rows ``<= i``, so the features of the
last row of a window are exactly what an online predictor sees.

>>> import numpy as np
>>> spec = FeatureSpec(windows=(2, 4), ewm_alphas=(0.5,))
>>> x = np.arange(12, dtype=float).reshape(6, 2)      # 6 rows, 2 sensors
>>> f = window_features(x, spec)
>>> f.shape == (6, len(spec.names(["a", "b"])))
True
>>> float(dict(zip(spec.names(["a", "b"]), f[-1]))["a__slope_4"])
2.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from detection.features._validate import as_2d_float, check_alpha, check_window
from detection.features.crossings import rolling_crossing_rate
from detection.features.ewm import ewm_mean
from detection.features.rolling_level import rolling_mean
from detection.features.rolling_rise import rolling_rise
from detection.features.rolling_slope import rolling_slope
from detection.features.rolling_spread import rolling_std


@dataclass(frozen=True)
class FeatureSpec:
    """Which features to compute; ``windows`` and the crossing window are in rows. ``rise``
    adds, per window, the last reading minus the window's lowest (for products whose sensors
    include counters that only rise: what a counter added recently, not its level)."""

    windows: tuple[int, ...] = (5, 10, 20, 30)
    ewm_alphas: tuple[float, ...] = (0.1, 0.3)
    crossings: bool = True
    current: bool = True
    rise: bool = False

    def __post_init__(self):
        if not self.windows:
            raise ValueError("FeatureSpec needs at least one window")
        object.__setattr__(self, "windows", tuple(check_window(w) for w in self.windows))
        object.__setattr__(self, "ewm_alphas", tuple(check_alpha(a) for a in self.ewm_alphas))

    @property
    def history(self) -> int:
        """Rows of history the longest window looks at."""
        return max(self.windows)

    def per_sensor(self) -> list[str]:
        names = ["value"] if self.current else []
        for w in self.windows:
            names += [f"mean_{w}", f"std_{w}", f"slope_{w}"]
            if self.has_rise:
                names.append(f"rise_{w}")
        if self.crossings:
            names.append(f"crossings_{self.history}")
        names += [f"ewm_{a:g}" for a in self.ewm_alphas]
        return names

    @property
    def has_rise(self) -> bool:
        """``rise``; False for a spec pickled before the field existed."""
        return bool(getattr(self, "rise", False))

    def names(self, sensors: Sequence[str]) -> list[str]:
        """Feature names, ``"{sensor}__{feature}"``, in column order."""
        return [f"{s}__{f}" for s in sensors for f in self.per_sensor()]

    def to_dict(self) -> dict:
        return asdict(self)


def window_features(x, spec: FeatureSpec) -> np.ndarray:
    """Features for every row of ``x`` (``(n, k)``, oldest first, NaN = missing): ``(n, F)``
    with columns ordered as ``spec.names(sensors)``."""
    a, _ = as_2d_float(x)
    n, k = a.shape
    blocks = []  # each (n, k): one feature for all sensors
    if spec.current:
        blocks.append(np.where(np.isfinite(a), a, np.nan))
    for w in spec.windows:
        blocks += [rolling_mean(a, w), rolling_std(a, w), rolling_slope(a, w)]
        if spec.has_rise:
            blocks.append(rolling_rise(a, w))
    if spec.crossings:
        blocks.append(rolling_crossing_rate(a, spec.history))
    blocks += [ewm_mean(a, alpha) for alpha in spec.ewm_alphas]
    # (n, n_features_per_sensor, k) -> sensor-major columns
    return np.stack(blocks, axis=1).transpose(0, 2, 1).reshape(n, k * len(blocks))


def grouped_features(x, lengths: Sequence[int], spec: FeatureSpec) -> np.ndarray:
    """``window_features`` over consecutive groups of rows (one run per unit or life), so no
    window reaches across a group boundary. ``lengths`` must sum to the number of rows."""
    a, _ = as_2d_float(x)
    lengths = [int(n) for n in lengths]
    if any(n < 0 for n in lengths) or sum(lengths) != a.shape[0]:
        raise ValueError(f"group lengths sum to {sum(lengths)}, but there are {a.shape[0]} rows")
    out = np.empty((a.shape[0], a.shape[1] * len(spec.per_sensor())))
    start = 0
    for n in lengths:
        out[start : start + n] = window_features(a[start : start + n], spec)
        start += n
    return out
