"""Context novelty per sensor: a reading is anomalous when the move from the previous level to
this one has never been seen (e.g. a jump between two normal levels, a dip where the signal
never dips, a plateau at a new height). Levels come from the range of the first ``warmup``
readings (buffered, then replayed, so those transitions are known too); tile coding with
``tiles`` offset grids keeps boundary noise quiet. Each novel context weighs its surprise,
``-log10`` of the sensor's running share of novel contexts (news in a quiet series, routine in
a restless one); an alarm needs ``min_surprise`` decades summed over the last ``window``
readings (an event rather than one stray value) and scores ``s / (s + min_surprise)`` in
(0, 1), else 0. After an alarm the sensor stays quiet for ``refractory`` readings (one event,
one alarm). Defaults (``window=1, min_surprise=0``) alarm on every novel context.

>>> import numpy as np
>>> from detection.anomaly.context import ContextNovelty
>>> t = np.arange(3000)
>>> wave = np.sin(2 * np.pi * t / 100)
>>> det = ContextNovelty(warmup=500)
>>> scores = []
>>> for i, v in enumerate(wave):
...     if i == 2525:
...         v = -v                     # the crest of one cycle turns into a trough
...     scores.append(det.score_one({"s": v}))
...     det.learn_one({"s": v})
>>> sum(scores[500:2525]), scores[2525]
(0.0, 1.0)
"""

from __future__ import annotations

import math

import numpy as np

from detection.anomaly.base import AnomalyDetector
from detection.kernels import context as K


class _Sensor:
    __slots__ = ("buffer", "lo", "span", "seen", "prev", "counters", "ring")

    def __init__(self, window: int) -> None:
        self.buffer: list[float] = []
        self.lo = self.span = 0.0
        self.seen = None
        self.prev = None
        self.counters, self.ring = K.new_counters(window)


class ContextNovelty(AnomalyDetector):
    _params = ("n_bins", "tiles", "pad", "warmup", "refractory", "window", "min_surprise", "prior_n")

    def __init__(self, n_bins: int = 12, tiles: int = 2, pad: int = 48, warmup: int = 200, refractory: int = 0,
                 window: int = 1, min_surprise: float = 0.0, prior_n: float = 10.0):
        if n_bins < 2 or tiles < 1 or pad < 0 or warmup < 2 or refractory < 0 or window < 1 or min_surprise < 0 \
                or prior_n < 1:
            raise ValueError("need n_bins >= 2, tiles >= 1, pad >= 0, warmup >= 2, refractory >= 0, window >= 1, "
                             "min_surprise >= 0, prior_n >= 1")
        self.n_bins, self.tiles, self.pad, self.warmup, self.refractory = n_bins, tiles, pad, warmup, refractory
        self.window, self.min_surprise, self.prior_n = window, float(min_surprise), float(prior_n)
        self._sensors: dict = {}

    @staticmethod
    def _items(x: dict):
        for k, v in x.items():
            if v is None:
                continue
            v = float(v)
            if math.isfinite(v):
                yield k, v

    def _start(self, s: _Sensor) -> None:
        """End of warm-up: fix the level range and learn the buffered transitions."""
        b = np.asarray(s.buffer)
        s.lo = float(b.min())
        span = float(b.max() - b.min())
        s.span = span if span > 0 else (abs(s.lo) or 1.0)
        s.seen = K.new_grid(self.n_bins, self.tiles, self.pad)
        s.prev = np.full(self.tiles, -1, dtype=np.int64)
        K.novelty_scores(b, s.seen, s.prev, s.lo, s.span, self.n_bins, self.pad, 0, 0.0, 1.0, *K.new_counters(1))
        s.buffer = []

    def score_one(self, x: dict) -> float:
        best = 0.0
        for k, v in self._items(x):
            s = self._sensors.get(k)
            if s is None or s.seen is None:
                continue
            out = K.novelty_scores(np.array([v]), s.seen.copy(), s.prev.copy(), s.lo, s.span, self.n_bins, self.pad,
                                   self.refractory, self.min_surprise, self.prior_n, s.counters.copy(), s.ring.copy())
            best = max(best, float(out[0]))
        return best

    def learn_one(self, x: dict) -> None:
        for k, v in x.items():                  # an explicit gap breaks that sensor's chain
            s = self._sensors.get(k)
            if s is not None and s.seen is not None and (v is None or not math.isfinite(float(v))):
                s.prev[:] = -1
        for k, v in self._items(x):
            s = self._sensors.get(k)
            if s is None:
                s = self._sensors[k] = _Sensor(self.window)
            if s.seen is None:
                s.buffer.append(v)
                if len(s.buffer) >= self.warmup:
                    self._start(s)
                continue
            K.novelty_scores(np.array([v]), s.seen, s.prev, s.lo, s.span, self.n_bins, self.pad, self.refractory,
                             self.min_surprise, self.prior_n, s.counters, s.ring)

    def score_many(self, values: np.ndarray) -> np.ndarray:
        """Score-then-learn a whole single-sensor series in one kernel call (NaN = missing).

        Equivalent to ``score_one`` followed by ``learn_one`` per value on a fresh detector."""
        values = np.asarray(values, dtype=np.float64)
        out = np.zeros(len(values))
        s = _Sensor(self.window)
        finite = np.flatnonzero(np.isfinite(values))
        if len(finite) < self.warmup:
            return out
        cut = finite[self.warmup - 1] + 1
        s.buffer = values[:cut][np.isfinite(values[:cut])].tolist()
        self._start(s)
        out[cut:] = K.novelty_scores(values[cut:], s.seen, s.prev, s.lo, s.span, self.n_bins, self.pad,
                                     self.refractory, self.min_surprise, self.prior_n, s.counters, s.ring)
        return out
