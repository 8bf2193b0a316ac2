"""From an asset's history to training rows: lives, targets, censoring.

A life runs from the start of the data (or the end of a failure / the start of a repair) to
the next failure or repair. At the end of each row ``t`` of a life (an hour, or a bucket of the
asset's ``step_h`` hours) (every ``stride_h`` hours,
once ``min_history_h`` hours of it are seen) the row gets the features of the trailing window
and two targets:

- RUL: hours from ``t`` to the failure that ends the life, if a failure of a predictable mode
  ends it; if the life ends otherwise (a repair, an unpredictable failure, the end of the
  data), the RUL is only known to exceed the time left, which is enough when that is at least
  the cap (the target is ``min(rul, cap)``); otherwise the row has no RUL target.
- Horizon label: the mode if a predictable failure ends the life within ``horizon_h`` of
  ``t``; ``""`` (no failure) if the life is observed for at least ``horizon_h`` more hours
  without one; otherwise unknown.

Hours the asset was down or under repair are blanked (NaN) before features are computed.

>>> import numpy as np
>>> from detection.features.pipeline import FeatureSpec
>>> a = AssetHistory("A1", 0.0, np.arange(100.0).reshape(-1, 1), failures=[(60.5, "wear")],
...                  down=[(60.5, 70.0)])
>>> ds = build_rows([a], lambda mode: True, FeatureSpec(windows=(4,), ewm_alphas=()),
...                 horizon_h=24, cap_h=48, stride_h=12, min_history_h=4)
>>> ds.time_h.tolist()
[4.0, 16.0, 28.0, 40.0, 52.0, 74.0, 86.0, 98.0]
>>> ds.rul.round(1).tolist()[:5], ds.label.tolist()[:5]
([48.0, 44.5, 32.5, 20.5, 8.5], ['', '', '', 'wear', 'wear'])
>>> ds.rul_known.tolist()[5:], ds.label_known.tolist()[5:]
([False, False, False], [True, False, False])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from detection.features.pipeline import FeatureSpec, window_features
from detection.prediction.history import AssetHistory
from detection.prediction.predictor import NO_FAILURE


@dataclass
class TrainingRows:
    X: np.ndarray            # float64[n, F]
    rul: np.ndarray          # float64[n] hours (capped), NaN where unknown
    rul_known: np.ndarray    # bool[n]
    label: np.ndarray        # object[n]: mode, "" = no failure within the horizon
    label_known: np.ndarray  # bool[n]
    uncensored: np.ndarray   # bool[n]: a predictable failure ends this row's life
    asset: np.ndarray        # int[n] index into the asset list
    time_h: np.ndarray       # float64[n] epoch hours at the end of the row's bucket

    def __len__(self) -> int:
        return len(self.rul)

    def subset(self, mask: np.ndarray) -> TrainingRows:
        return TrainingRows(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))


def blank_down(a: AssetHistory) -> np.ndarray:
    v = a.values.copy()
    n = v.shape[0]
    for lo, hi in a.down:
        i0 = max(0, int(np.floor((lo - a.start_h) / a.step_h)))
        i1 = n if not np.isfinite(hi) else min(n, int(np.ceil((hi - a.start_h) / a.step_h)))
        if i0 < i1:
            v[i0:i1] = np.nan
    return v


def build_rows(assets: Sequence[AssetHistory], is_predictable: Callable[[str], bool], spec: FeatureSpec,
               horizon_h: float, cap_h: float, stride_h: int = 6, min_history_h: int = 24,
               progress=None) -> TrainingRows:
    """Training rows of every asset's lives; ``progress`` wraps the per-asset loop.
    ``stride_h`` and ``min_history_h`` are hours, rounded to whole rows (at least one) of each
    asset's ``step_h``; ``spec`` windows are rows."""
    n_feat = None
    parts: dict[str, list] = {k: [] for k in ("X", "rul", "rk", "lab", "lk", "unc", "asset", "t")}
    numbered = list(enumerate(assets))
    for ai, a in progress(numbered) if progress else numbered:
        values = blank_down(a)
        n = values.shape[0]
        ends: dict[float, str | None] = {r: None for r in a.repairs}
        ends.update({t: m for t, m in a.failures})  # a failure at the same time wins
        cuts = np.array(sorted(ends))
        seg = np.searchsorted(cuts, a.row_start_h, side="right")
        stride = max(1, int(round(stride_h / a.step_h)))
        min_rows = max(1, int(round(min_history_h / a.step_h)))
        for s in np.unique(seg):
            idx = np.flatnonzero(seg == s)
            i0, i1 = idx[0], idx[-1] + 1
            live = np.flatnonzero(np.isfinite(values[i0:i1]).any(axis=1))
            if live.size == 0:
                continue
            i0 += live[0]  # the life (re)starts with its first reading after the downtime
            if s < len(cuts):
                end_t, end_mode = float(cuts[s]), ends[float(cuts[s])]
            else:
                end_t, end_mode = a.end_h, None
            fails = end_mode is not None and is_predictable(end_mode)
            local = np.arange(i1 - i0)
            take = local[(local >= min_rows - 1) & ((local - (min_rows - 1)) % stride == 0)]
            if take.size == 0:
                continue
            block = values[i0:i1]
            take = take[np.isfinite(block[take]).any(axis=1)]
            if take.size == 0:
                continue
            feats = window_features(block, spec)[take]
            n_feat = feats.shape[1]
            t = a.start_h + (i0 + take + 1.0) * a.step_h
            left = end_t - t
            rul = np.maximum(left, 0.0)
            if fails:
                rk = np.ones(take.size, bool)
            else:
                rk = left >= cap_h
            rul = np.where(rk, np.minimum(rul, cap_h), np.nan)
            within = fails & (left <= horizon_h)
            lab = np.where(within, end_mode if fails else NO_FAILURE, NO_FAILURE).astype(object)
            lk = within | (left >= horizon_h)
            for key, val in (("X", feats), ("rul", rul), ("rk", rk), ("lab", lab), ("lk", lk),
                             ("unc", np.full(take.size, fails)), ("asset", np.full(take.size, ai)),
                             ("t", t)):
                parts[key].append(val)
    if n_feat is None:
        empty = np.zeros(0)
        return TrainingRows(np.zeros((0, 0)), empty, empty.astype(bool), empty.astype(object),
                            empty.astype(bool), empty.astype(bool), empty.astype(int), empty)
    return TrainingRows(np.vstack(parts["X"]), np.concatenate(parts["rul"]), np.concatenate(parts["rk"]),
                        np.concatenate(parts["lab"]), np.concatenate(parts["lk"]),
                        np.concatenate(parts["unc"]), np.concatenate(parts["asset"]),
                        np.concatenate(parts["t"]))
