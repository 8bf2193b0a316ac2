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

With ``phase_slots > 0`` and a time ``t`` (seconds since the epoch, or a ``datetime64``/
``datetime``) given to ``learn_one``/``score_one``, a second channel remembers which levels
occur in which slot of the ``phase_period`` (default a day cut into ``phase_slots`` slots): a
level never seen at this time of day adds ``phase_weight`` times its own surprise (levels
clamped ``phase_pad`` beyond the range). Readings without a time skip that channel.

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

A daily load that stays at its night level one afternoon: every transition is routine, only
the time of day gives it away.

>>> hours = np.arange(24 * 40) * 3600.0                       # 40 days, hourly
>>> load = np.where((hours // 3600) % 24 >= 8, 10.0, 2.0)    # busy from 08:00 to midnight
>>> load[24 * 30 + 8: 24 * 30 + 16] = 2.0                    # day 30: idle until 16:00
>>> plain = ContextNovelty(warmup=24 * 7, refractory=24).score_many(load)
>>> daily = ContextNovelty(warmup=24 * 7, refractory=24, phase_slots=24).score_many(load, hours)
>>> float(plain.max()), np.flatnonzero(daily).tolist() == [24 * 30 + 8]
(0.0, True)
"""

from __future__ import annotations

import datetime as _dt
import math

import numpy as np

from detection.anomaly.base import AnomalyDetector
from detection.kernels import context as K


class _Sensor:
    __slots__ = ("buffer", "phases", "lo", "span", "seen", "pseen", "prev", "counters", "ring")

    def __init__(self, window: int) -> None:
        self.buffer: list[float] = []
        self.phases: list[int] = []
        self.lo = self.span = 0.0
        self.seen = self.pseen = None
        self.prev = None
        self.counters, self.ring = K.new_counters(window)


def _seconds(t) -> np.ndarray:
    """Times as float seconds since the epoch (numbers pass through; NaT/None -> NaN)."""
    if t is None:
        return np.array([np.nan])
    if isinstance(t, _dt.datetime):
        t = np.datetime64(t.replace(tzinfo=None) if t.tzinfo is None else t.astimezone(_dt.timezone.utc)
                          .replace(tzinfo=None), "us")
    a = np.atleast_1d(np.asarray(t))
    if np.issubdtype(a.dtype, np.datetime64):
        nat = np.isnat(a)
        sec = a.astype("datetime64[us]").astype(np.int64) / 1e6
        return np.where(nat, np.nan, sec)
    return a.astype(np.float64)


class ContextNovelty(AnomalyDetector):
    _params = ("n_bins", "tiles", "pad", "warmup", "refractory", "window", "min_surprise", "prior_n",
               "phase_slots", "phase_period", "phase_pad", "phase_weight")

    def __init__(self, n_bins: int = 12, tiles: int = 2, pad: int = 48, warmup: int = 200, refractory: int = 0,
                 window: int = 1, min_surprise: float = 0.0, prior_n: float = 10.0, phase_slots: int = 0,
                 phase_period: float = 86400.0, phase_pad: int = 4, phase_weight: float = 0.7):
        if n_bins < 2 or tiles < 1 or pad < 0 or warmup < 2 or refractory < 0 or window < 1 or min_surprise < 0 \
                or prior_n < 1:
            raise ValueError("need n_bins >= 2, tiles >= 1, pad >= 0, warmup >= 2, refractory >= 0, window >= 1, "
                             "min_surprise >= 0, prior_n >= 1")
        if phase_slots < 0 or not phase_period > 0 or phase_pad < 0 or not phase_weight >= 0:
            raise ValueError("need phase_slots >= 0, phase_period > 0, phase_pad >= 0, phase_weight >= 0")
        self.n_bins, self.tiles, self.pad, self.warmup, self.refractory = n_bins, tiles, pad, warmup, refractory
        self.window, self.min_surprise, self.prior_n = window, float(min_surprise), float(prior_n)
        self.phase_slots, self.phase_period = int(phase_slots), float(phase_period)
        self.phase_pad, self.phase_weight = int(phase_pad), float(phase_weight)
        self._sensors: dict = {}

    @staticmethod
    def _items(x: dict):
        for k, v in x.items():
            if v is None:
                continue
            v = float(v)
            if math.isfinite(v):
                yield k, v

    def _phases(self, t, n: int = 1) -> np.ndarray:
        """Slot of the period per time (-1: no time, or no phase channel)."""
        if not self.phase_slots or t is None:
            return np.full(n, -1, dtype=np.int64)
        sec = _seconds(t)
        if sec.shape[0] != n:
            raise ValueError(f"{sec.shape[0]} times for {n} values")
        frac = np.mod(sec, self.phase_period) / self.phase_period
        slot = np.floor(np.nan_to_num(frac, nan=-1.0) * self.phase_slots)
        return np.where(np.isfinite(sec), np.minimum(slot, self.phase_slots - 1), -1).astype(np.int64)

    def _scores(self, s: _Sensor, values: np.ndarray, phases: np.ndarray, seen, prev, pseen, counters, ring):
        return K.novelty_scores(values, phases, self.phase_slots, seen, prev, pseen, s.lo, s.span, self.n_bins, self.pad,
                                self.phase_pad, self.refractory, self.min_surprise, self.prior_n, self.phase_weight,
                                counters, ring)

    def _start(self, s: _Sensor) -> None:
        """End of warm-up: fix the level range and learn the buffered transitions."""
        b = np.asarray(s.buffer)
        s.lo = float(b.min())
        span = float(b.max() - b.min())
        s.span = span if span > 0 else (abs(s.lo) or 1.0)
        s.seen = K.new_grid(self.n_bins, self.tiles, self.pad)
        s.pseen = K.new_phase_grid(self.n_bins, self.tiles, self.phase_pad, self.phase_slots)
        s.prev = np.full(self.tiles, -1, dtype=np.int64)
        self._scores(s, b, np.asarray(s.phases, dtype=np.int64), s.seen, s.prev, s.pseen, *K.new_counters(1))
        s.buffer, s.phases = [], []

    def score_one(self, x: dict, t=None) -> float:
        best = 0.0
        phase = self._phases(t)
        for k, v in self._items(x):
            s = self._sensors.get(k)
            if s is None or s.seen is None:
                continue
            out = self._scores(s, np.array([v]), phase, s.seen.copy(), s.prev.copy(), s.pseen.copy(),
                               s.counters.copy(), s.ring.copy())
            best = max(best, float(out[0]))
        return best

    def learn_one(self, x: dict, t=None) -> None:
        for k, v in x.items():                  # an explicit gap breaks that sensor's chain
            s = self._sensors.get(k)
            if s is not None and s.seen is not None and (v is None or not math.isfinite(float(v))):
                s.prev[:] = -1
        phase = self._phases(t)
        for k, v in self._items(x):
            s = self._sensors.get(k)
            if s is None:
                s = self._sensors[k] = _Sensor(self.window)
            if s.seen is None:
                s.buffer.append(v)
                s.phases.append(int(phase[0]))
                if len(s.buffer) >= self.warmup:
                    self._start(s)
                continue
            self._scores(s, np.array([v]), phase, s.seen, s.prev, s.pseen, s.counters, s.ring)

    def score_many(self, values: np.ndarray, times=None) -> np.ndarray:
        """Score-then-learn a whole single-sensor series in one kernel call (NaN = missing;
        ``times`` as for ``t``, one per value, or None).

        Equivalent to ``score_one`` followed by ``learn_one`` per value on a fresh detector."""
        values = np.asarray(values, dtype=np.float64)
        phases = self._phases(times, len(values))
        out = np.zeros(len(values))
        s = _Sensor(self.window)
        finite = np.flatnonzero(np.isfinite(values))
        if len(finite) < self.warmup:
            return out
        cut = finite[self.warmup - 1] + 1
        keep = np.isfinite(values[:cut])
        s.buffer = values[:cut][keep].tolist()
        s.phases = phases[:cut][keep].tolist()
        self._start(s)
        out[cut:] = self._scores(s, values[cut:], phases[cut:], s.seen, s.prev, s.pseen, s.counters, s.ring)
        return out
