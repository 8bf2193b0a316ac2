"""Detectors run over one NAB series: ours and NAB's windowed-Gaussian baseline.

All see each series once, in time order, with no look-ahead, and return one score in [0, 1]
per row; their warm-up is the series' probationary period, as NAB's own detectors do.

- ``context_scores``: :class:`detection.anomaly.context.ContextNovelty`; with the rows'
  timestamps and ``DAILY_PARAMS`` (its time-of-day channel on) it is the NAB entry, without
  them and with ``CONTEXT_PARAMS`` the previous entry,
- ``fleet_scores``: the production ``FleetDetector`` (EWMA/MAD/CUSUM fused z-scores, one device,
  one sensor), scored alongside for comparison,
- ``windowed_gaussian``: NAB's baseline, re-implemented from its published description.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = np.r_[rng.normal(size=2000), 40.0, rng.normal(size=99)]
>>> wg = windowed_gaussian(x)
>>> bool(wg[2000] > 0.999999 and np.median(wg[100:2000]) < 0.9)
True
>>> cs = context_scores(x, 300)
>>> bool(cs[2000:2002].max() > 0)
True
>>> t = np.datetime64("2024-01-01T00:00") + np.arange(len(x)) * np.timedelta64(5, "m")
>>> ds = context_scores(x, 300, t, DAILY_PARAMS)
>>> bool(ds[2000:2002].max() > 0)
True
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from detection.anomaly.context import ContextNovelty
from detection.fleet import FleetConfig, FleetDetector

# One parameter set for the whole corpus (chosen on the corpus score, never per series).
CONTEXT_PARAMS = {"n_bins": 12, "tiles": 2, "pad": 48, "window": 30, "min_surprise": 3.5, "prior_n": 10.0}
# ... plus the (hour of the day, level) channel: the NAB entry.
DAILY_PARAMS = CONTEXT_PARAMS | {"min_surprise": 4.0, "phase_slots": 24, "phase_period": 86400.0, "phase_pad": 4,
                                 "phase_weight": 0.7}
REFRACTORY_OF_PROBATION = 0.2          # quiet period after an alarm, as a share of the warm-up
FLEET_CONFIG = FleetConfig(
    alpha=0.01, robust_lr=0.01, cusum_k=0.5, clip=6.0, learn_clip=4.0, warmup=50, threshold=0.02,
    fused_scale=300.0, refractory=100, suppress=0.0, relearn=20, mahalanobis=False,
)


def context_scores(values: np.ndarray, probation: int, timestamps: np.ndarray | None = None,
                   params: dict = CONTEXT_PARAMS) -> np.ndarray:
    """Confirmed novel-context alarms from a fresh :class:`ContextNovelty` warmed on the probation
    (``timestamps`` feed its time-of-day channel when ``params`` turn it on)."""
    det = ContextNovelty(warmup=max(int(probation), 2), refractory=int(REFRACTORY_OF_PROBATION * probation),
                         **params)
    return det.score_many(values, timestamps)


def fleet_scores(values: np.ndarray, timestamps: np.ndarray, probation: int,
                 config: FleetConfig = FLEET_CONFIG) -> np.ndarray:
    """Fused score per row from a fresh ``FleetDetector`` (NaN during warm-up reported as 0)."""
    cfg = replace(config, warmup=max(int(probation), 2))
    det = FleetDetector(1, cfg, capacity=1)
    t = (timestamps - timestamps[0]).astype("timedelta64[s]").astype(np.float64)
    res = det.update_rows(np.zeros(len(values), dtype=np.int64), np.asarray(values, dtype=np.float64)[:, None], t,
                          threads=False)
    return np.nan_to_num(res.fused, nan=0.0)


def windowed_gaussian(values: np.ndarray, window: int = 6400, step: int = 100) -> np.ndarray:
    """NAB's windowed Gaussian detector: ``1 - Q(|z|)`` of each value under the mean and standard
    deviation of the last ``window`` values (refreshed every ``step`` once the window is full)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.zeros(len(values))
    data: list[float] = []
    buf: list[float] = []
    mean, std = 0.0, 1.0
    s1 = s2 = 0.0
    for i, x in enumerate(values):
        if data:
            z = (x - mean) / std
            out[i] = 1.0 - 0.5 * math.erfc(abs(z) / math.sqrt(2.0))
        if len(data) < window:
            data.append(x)
            s1 += x
            s2 += x * x
            mean = s1 / len(data)
            std = math.sqrt(max(s2 / len(data) - mean * mean, 0.0))
        else:
            buf.append(x)
            if len(buf) == step:
                data = data[step:] + buf
                buf = []
                arr = np.asarray(data)
                mean, std = float(arr.mean()), float(arr.std())
                s1, s2 = float(arr.sum()), float((arr * arr).sum())
        if std == 0.0:
            std = 0.000001
    return out
