"""Detectors run over one NAB series: the production detector set and NAB's windowed-Gaussian baseline.

All see each series once, in time order, with no look-ahead, and return one score in [0, 1]
per row; their warm-up is the series' probationary period, as NAB's own detectors do.

- ``production_scores``: the product's detector set, :class:`detection.fleet.FleetDetector`
  (the code ``prognos detect`` runs), one device with one sensor, configured by ``NAB_CONFIG``
  (one ``FleetConfig``, the per-product-model configuration object, for the whole corpus; per
  series only the warm-up and the quiet period follow the probationary period). This is the
  NAB entry. ``NAB_CANDIDATES`` are the configurations it was chosen from, on the even-numbered
  series only (``benchmarks.nab --select``).
- ``fleet_scores``: the same detector set with only its z tests (EWMA/MAD/CUSUM), for comparison,
- ``context_scores``: :class:`detection.anomaly.context.ContextNovelty`, the standalone class over
  the same context kernel (the previous entry; not what the service runs),
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
>>> ps = production_scores(x, t, 300)
>>> bool(ps[2000:2002].max() > 0), bool(np.array_equal(ps, ds))     # the same channel, the same alarms
(True, True)
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from detection.anomaly.context import ContextNovelty
from detection.fleet import FleetConfig, FleetDetector

# One parameter set for the whole corpus (chosen on the corpus score, never per series).
CONTEXT_PARAMS = {"n_bins": 12, "tiles": 2, "pad": 48, "window": 30, "min_surprise": 3.5, "prior_n": 10.0}
# ... plus the (hour of the day, level) channel: the previous entry (the standalone class), whose
# context parameters NAB_CONFIG below inherits.
DAILY_PARAMS = CONTEXT_PARAMS | {"min_surprise": 4.0, "phase_slots": 24, "phase_period": 86400.0, "phase_pad": 4,
                                 "phase_weight": 0.7}
REFRACTORY_OF_PROBATION = 0.2          # quiet period after an alarm, as a share of the warm-up
FLEET_CONFIG = FleetConfig(
    alpha=0.01, robust_lr=0.01, cusum_k=0.5, clip=6.0, learn_clip=4.0, warmup=50, threshold=0.02,
    fused_scale=300.0, refractory=100, suppress=0.0, relearn=20, mahalanobis=False, context=False,
)
# The configurations the NAB entry was chosen from (on the even-numbered series only): the
# product's defaults with the z tests off or on, and the context levels clamped 12 or 48 beyond
# the warm-up range. The context channel's own parameters (levels, tilings, window,
# min_surprise, time-of-day channel) are the previous entry's ``DAILY_PARAMS``.
_CTX = dict(ctx_bins=DAILY_PARAMS["n_bins"], ctx_tiles=DAILY_PARAMS["tiles"], ctx_window=DAILY_PARAMS["window"],
            ctx_min_surprise=DAILY_PARAMS["min_surprise"], ctx_prior_n=DAILY_PARAMS["prior_n"],
            phase_slots=DAILY_PARAMS["phase_slots"], phase_period=DAILY_PARAMS["phase_period"],
            phase_pad=DAILY_PARAMS["phase_pad"], phase_weight=DAILY_PARAMS["phase_weight"], mahalanobis=False)
NAB_CANDIDATES = {
    "context_pad12": FleetConfig(**_CTX, ctx_pad=12, zscore=False),
    "context_pad48": FleetConfig(**_CTX, ctx_pad=48, zscore=False),
    "context_pad12_z": FleetConfig(**_CTX, ctx_pad=12, zscore=True),
    "context_pad12_z_scale300": FleetConfig(**_CTX, ctx_pad=12, zscore=True, fused_scale=300.0),
}
NAB_CHOICE = "context_pad48"           # best standard score on the even-numbered series
NAB_CONFIG = NAB_CANDIDATES[NAB_CHOICE]


def production_scores(values: np.ndarray, timestamps: np.ndarray, probation: int,
                      config: FleetConfig = NAB_CONFIG) -> np.ndarray:
    """Fused score per row of the product's detector set on one series (warm-up reported as 0).

    Warm-up = the probationary period; a context alarm is followed by ``0.2 x`` that many
    quiet readings (``ctx_refractory``). Timestamps (``datetime64``) feed the time-of-day channel."""
    p = max(int(probation), 2)
    cfg = replace(config, warmup=p, ctx_refractory=int(REFRACTORY_OF_PROBATION * probation), refractory=0)
    det = FleetDetector(1, cfg, capacity=1)
    t = np.asarray(timestamps).astype("datetime64[us]").astype(np.int64) / 1e6
    res = det.update_rows(np.zeros(len(values), dtype=np.int64), np.asarray(values, dtype=np.float64)[:, None], t,
                          threads=False)
    return np.nan_to_num(res.fused, nan=0.0)


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
