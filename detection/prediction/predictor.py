"""The trained per-product-model predictor the online service calls: from a window of hourly
sensor means to remaining useful life, probability of failure within the horizon, and the most
likely failure mode.

>>> import numpy as np
>>> from detection.features.pipeline import FeatureSpec
>>> rng = np.random.default_rng(0)
>>> spec = FeatureSpec(windows=(4,), ewm_alphas=())
>>> X = rng.normal(size=(300, len(spec.names(["temp"]))))
>>> rul = RULRegressor(cap=100, n_members=1, max_iter=20, random_state=0).fit(X, np.abs(X[:, 0]) * 50)
>>> clf = HorizonClassifier(negative_class="", n_members=1, max_iter=20, random_state=0).fit(
...     X, np.where(X[:, 0] > 1, "fouling", ""))
>>> pred = AssetPredictor("PMP-200", ["temp"], 4, 336.0, spec, rul, clf)
>>> out = pred.predict(np.array([[1.0], [np.nan], [1.5], [2.0]]))
>>> sorted(out._asdict())
['mode', 'p_fail', 'p_mode', 'rul_h', 'rul_hi_h', 'rul_lo_h']
>>> out.rul_lo_h is None                # no interval without a calibration (see ``RULInterval``)
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from detection.features.pipeline import FeatureSpec, window_features
from detection.prediction.horizon import HorizonClassifier
from detection.prediction.rul import RULInterval, RULRegressor

NO_FAILURE = ""  # the horizon classifier's label for "no failure within the horizon"


class Prediction(NamedTuple):
    rul_h: float         # predicted hours to the next failure of a predictable mode (capped)
    p_fail: float        # probability of a failure within the horizon
    mode: str | None     # most likely failure mode, None if the model knows no failure mode
    rul_lo_h: float | None = None   # 10th percentile of the time to failure (conformal), hours
    rul_hi_h: float | None = None   # 90th percentile (the cap means "at least the cap")
    p_mode: dict | None = None      # failure mode -> probability of a failure of it within the horizon


class AssetPredictor:
    """Feature spec + RUL regressor + horizon classifier for one product model.

    ``sensors`` are the sensor names in model (``sensors.position``) order; ``window_h`` is how
    many hourly rows of history the features look at; ``version`` is set by the model store.
    """

    def __init__(self, model_id: str, sensors: Sequence[str], window_h: int, horizon_h: float,
                 spec: FeatureSpec, rul_model: RULRegressor, horizon_model: HorizonClassifier,
                 version: str | None = None, metadata: dict | None = None, normalizer=None,
                 interval: RULInterval | None = None, prior=None):
        self.model_id = model_id
        self.sensors = list(sensors)
        self.window_h = int(window_h)
        self.horizon_h = float(horizon_h)
        self.spec = spec
        self.rul_model = rul_model
        self.horizon_model = horizon_model
        self.version = version
        self.metadata = metadata or {}
        self.normalizer = normalizer  # RegimeNormalizer or None: appends regime z-scores
        self.interval = interval      # RULInterval or None: 10th-90th percentile of the time to failure
        self.prior = prior            # VariantPrior or None: appends the variant's expected failures in the horizon

    def __repr__(self) -> str:
        return (f"AssetPredictor({self.model_id!r}, version={self.version!r}, sensors={self.sensors}, "
                f"window_h={self.window_h}, horizon_h={self.horizon_h:g})")

    def _check(self, window) -> np.ndarray:
        w = np.asarray(window, dtype=np.float64)
        if w.ndim != 2 or w.shape[1] != len(self.sensors):
            raise ValueError(f"window must be float[n_steps, {len(self.sensors)}] "
                             f"(sensors {self.sensors}), got shape {w.shape}")
        if w.shape[0] < 1:
            raise ValueError("window needs at least one hourly row")
        return w[-self.window_h:]

    def _with_prior(self, f: np.ndarray, variant: str | None) -> np.ndarray:
        prior = getattr(self, "prior", None)          # predictors stored before priors have none
        if prior is None:
            return f
        col = prior.column(np.full(len(f), prior.rate(variant)), self.horizon_h)
        return np.hstack([f, col[:, None]])

    def features(self, window, variant: str | None = None) -> np.ndarray:
        """The feature row the models see for the last hour of ``window``: ``(1, F)``;
        ``variant``: the asset's variant (used when the predictor learned a variant prior)."""
        w = self._check(window)
        if self.normalizer is not None:
            w = self.normalizer.augment(w)
        return self._with_prior(window_features(w, self.spec)[-1:], variant)

    def predict(self, window, variant: str | None = None) -> Prediction:
        """``window``: float64[n_steps, n_sensors] hourly means, oldest first, NaN allowed."""
        return self._predict_rows(self.features(window, variant))[0]

    def predict_history(self, values, variant: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Backtest: ``(rul, p_fail)`` for every row of an asset's history (float64[n_rows,
        n_sensors], oldest first), each from that row and the ones before it only, as the
        service would have predicted at the end of that row (window features look back at
        most ``window_h`` rows; exponentially weighted means start at the first row)."""
        return self.predict_histories([values], [variant])[0]

    def predict_histories(self, histories: Sequence, variants: Sequence | None = None, tail: int | None = None
                          ) -> list[tuple[np.ndarray, np.ndarray]]:
        """``predict_history`` for many assets at once (one model call for all their rows);
        ``tail``: only each history's last ``tail`` rows are predicted (their features still
        look back over the rows before them)."""
        if tail is not None and tail < 1:
            raise ValueError(f"tail must be >= 1 rows, got {tail}")
        if variants is not None and len(variants) != len(histories):
            raise ValueError(f"{len(histories)} histories but {len(variants)} variants")
        feats = []
        for i, values in enumerate(histories):
            w = np.asarray(values, dtype=np.float64)
            if w.ndim != 2 or w.shape[1] != len(self.sensors) or w.shape[0] < 1:
                raise ValueError(f"values must be float[n_rows >= 1, {len(self.sensors)}], got shape {w.shape}")
            if self.normalizer is not None:
                w = self.normalizer.augment(w)
            f = self._with_prior(window_features(w, self.spec), None if variants is None else variants[i])
            feats.append(f if tail is None else f[-tail:])
        if not feats:
            return []
        f = np.vstack(feats)
        rul, p = self.rul_model.predict(f), np.clip(self.horizon_model.p_fail(f), 0.0, 1.0)
        cut = np.cumsum([len(x) for x in feats])[:-1]
        return list(zip(np.split(rul, cut), np.split(p, cut)))

    def predict_many(self, windows: Sequence, variants: Sequence | None = None) -> list[Prediction]:
        """``predict`` for many assets' windows at once (one model call for the fleet)."""
        if len(windows) == 0:
            return []
        if variants is not None and len(variants) != len(windows):
            raise ValueError(f"{len(windows)} windows but {len(variants)} variants")
        vs = variants if variants is not None else [None] * len(windows)
        return self._predict_rows(np.vstack([self.features(w, v) for w, v in zip(windows, vs)]))

    def _predict_rows(self, f: np.ndarray) -> list[Prediction]:
        rul = self.rul_model.predict(f)
        proba = self.horizon_model.predict_proba(f)
        p_fail = np.clip(self.horizon_model.p_fail(f), 0.0, 1.0)
        modes = self.horizon_model.predict_mode(f)
        classes = [str(c) for c in self.horizon_model.classes_]
        interval = getattr(self, "interval", None)       # predictors stored before intervals have none
        lo, hi = interval.predict(rul) if interval is not None else (None, None)
        out = []
        for i, (r, p, m) in enumerate(zip(rul, p_fail, modes)):
            p_mode = {c: round(float(proba[i, k]), 4) for k, c in enumerate(classes) if c != NO_FAILURE}
            out.append(Prediction(float(r), float(p), None if m is None or m == NO_FAILURE else str(m),
                                  None if lo is None else float(lo[i]), None if hi is None else float(hi[i]),
                                  p_mode))
        return out
