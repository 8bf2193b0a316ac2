"""NAB scoring: anomaly windows, the scaled sigmoid, probation, profiles, corpus threshold.

A detector's per-row scores in [0, 1] are turned into one normalised number per profile:

1. ``label_rows`` walks a series once and gives every row a unit weight: inside a window of
   width ``w`` ending at row ``r``, ``S(-(r - i + 1) / w) / S(-1)`` (early detections are worth
   almost a full true positive); outside, ``-1`` before any window has ended, else
   ``S(|r - i| / (w - 1))`` relative to the last window (``S`` is the scaled sigmoid, < 0 there).
   Probationary rows get no window and no weight.
2. ``sweep`` evaluates the corpus score for every threshold between distinct scores (rows with
   equal scores switch on together): each detection outside a window adds ``A_FP * unit``,
   each window adds ``A_TP * unit`` of its best detection or ``-A_FN`` if it has none.
3. ``score_corpus`` picks the best threshold per profile and normalises against the null
   detector (no detections) and a perfect one (``A_TP`` per window): null 0, perfect 100.

>>> import numpy as np
>>> round(float(scaled_sigmoid(np.array([-1.0]))[0]), 4), float(scaled_sigmoid(np.array([3.5]))[0])
(0.9866, -1.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detection.nab.corpus import Profile, Series


def scaled_sigmoid(y: np.ndarray) -> np.ndarray:
    """NAB's ``S(y) = 2 / (1 + exp(5 y)) - 1``, and ``-1`` for ``y >= 3``."""
    y = np.asarray(y, dtype=np.float64)
    return np.where(y >= 3.0, -1.0, 2.0 / (1.0 + np.exp(5.0 * np.minimum(y, 3.0))) - 1.0)


@dataclass
class RowLabels:
    """Per-row scoring data of one series."""

    window: np.ndarray      # int64[n]: window index in the series, -1 outside, -2 probationary
    unit: np.ndarray        # float64[n]: TP unit weight in a window, FP unit weight outside
    label: np.ndarray       # int64[n]: 1 inside a window (probation included), else 0
    counted: np.ndarray     # bool[n_windows]: the window has a row after probation

    @property
    def n_windows(self) -> int:
        return len(self.counted)


def _row_of(timestamps: np.ndarray, t, side: str) -> int:
    """First row stamped ``t`` (NAB matches window limits exactly); else the nearest row inside."""
    hit = np.flatnonzero(timestamps == t)
    if len(hit):
        return int(hit[0])
    i = int(np.searchsorted(timestamps, t, side=side))
    return i if side == "left" else i - 1


def label_rows(timestamps: np.ndarray, windows: list, probation: int) -> RowLabels:
    """Walk one series and give each row its window and unit weight (see the module docstring)."""
    n = len(timestamps)
    window = np.full(n, -1, dtype=np.int64)
    unit = np.empty(n)
    in_window = np.zeros(n, dtype=np.int64)
    spans = []
    for a, b in windows:
        lo, hi = _row_of(timestamps, a, "left"), _row_of(timestamps, b, "right")
        if hi < lo:
            raise ValueError(f"window {a}..{b} holds no row")
        spans.append((lo, hi))
    spans.sort()
    idx = np.arange(n)
    unit[:] = -1.0
    max_tp = scaled_sigmoid(np.array([-1.0]))[0]
    for k, (lo, hi) in enumerate(spans):
        w = hi - lo + 1
        rows = idx[lo:hi + 1]
        window[lo:hi + 1] = k
        in_window[lo:hi + 1] = 1
        unit[lo:hi + 1] = scaled_sigmoid(-(hi - rows + 1) / w) / max_tp
        end = spans[k + 1][0] if k + 1 < len(spans) else n
        after = idx[hi + 1:end]
        if len(after):
            unit[hi + 1:end] = scaled_sigmoid(np.abs(hi - after) / (w - 1)) if w > 1 else -1.0
    counted = np.array([hi >= probation for lo, hi in spans], dtype=bool)
    window[:probation] = -2
    return RowLabels(window=window, unit=unit, label=in_window, counted=counted)


@dataclass
class SweepResult:
    threshold: float       # detections are rows with score >= threshold (inf: none)
    raw: float             # corpus raw score at that threshold
    tp: int
    fp: int
    fn: int


def sweep(scores: list[np.ndarray], labels: list[RowLabels], profile: Profile) -> SweepResult:
    """Best corpus threshold for ``profile`` over the distinct scores of all series."""
    s_all, w_all, u_all = [], [], []
    offset = 0
    n_counted = 0
    for sc, lab in zip(scores, labels):
        keep = lab.window != -2
        win = lab.window[keep]
        s_all.append(np.asarray(sc, dtype=np.float64)[keep])
        w_all.append(np.where(win >= 0, win + offset, -1))
        u_all.append(lab.unit[keep])
        offset += lab.n_windows
        n_counted += int(lab.counted.sum())
    s = np.nan_to_num(np.concatenate(s_all), nan=0.0)
    win = np.concatenate(w_all)
    unit = np.concatenate(u_all)
    order = np.argsort(-s, kind="stable")
    s, win, unit = s[order], win[order], unit[order]

    best_in = np.full(offset, np.nan)
    total = -profile.a_fn * n_counted
    tp = fp = 0
    best = SweepResult(np.inf, total, 0, 0, n_counted)
    sl, wl, ul = s.tolist(), win.tolist(), unit.tolist()
    n = len(sl)
    for i in range(n):
        k = wl[i]
        if k < 0:
            total += profile.a_fp * ul[i]
            fp += 1
        else:
            v = profile.a_tp * ul[i]
            cur = best_in[k]
            if cur != cur:                       # first detection in this window
                total += v + profile.a_fn
                best_in[k] = v
                tp += 1
            elif v > cur:
                total += v - cur
                best_in[k] = v
        if (i + 1 == n or sl[i + 1] != sl[i]) and total > best.raw:
            best = SweepResult(sl[i], total, tp, fp, n_counted - tp)
    return best


def raw_at(scores: np.ndarray, lab: RowLabels, profile: Profile, threshold: float) -> float:
    """Raw score of one series at a fixed threshold (per-series reporting)."""
    keep = lab.window != -2
    det = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0) >= threshold
    det &= keep
    out = det & (lab.window == -1)
    total = profile.a_fp * lab.unit[out].sum()
    for k in range(lab.n_windows):
        if not lab.counted[k]:
            continue
        hit = det & (lab.window == k)
        total += profile.a_tp * lab.unit[hit].max() if hit.any() else -profile.a_fn
    return float(total)


def score_corpus(series: list[Series], scores: list[np.ndarray], profiles: list[Profile]) -> dict:
    """Normalised NAB score per profile: ``{profile: {score, threshold, raw, null, perfect, tp, fp, fn}}``."""
    if len(series) != len(scores):
        raise ValueError("one score array per series is required")
    labels = []
    for ser, sc in zip(series, scores):
        if len(sc) != len(ser.values):
            raise ValueError(f"{ser.key}: {len(sc)} scores for {len(ser.values)} rows")
        labels.append(label_rows(ser.timestamps, ser.windows, ser.probation))
    n_windows = sum(lab.n_windows for lab in labels)
    zeros = [np.zeros(len(ser.values)) for ser in series]
    out = {}
    for prof in profiles:
        res = sweep(scores, labels, prof)
        null = sweep(zeros, labels, prof).raw
        perfect = prof.a_tp * n_windows
        out[prof.name] = {
            "score": 100.0 * (res.raw - null) / (perfect - null),
            "threshold": res.threshold, "raw": res.raw, "null": null, "perfect": perfect,
            "tp": res.tp, "fp": res.fp, "fn": res.fn,
        }
    return out
