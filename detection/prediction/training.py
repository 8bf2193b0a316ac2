"""Train one product model's predictor from its history: build the rows, hold out a share of
the assets to measure, refit on everything, and describe it (metadata for the model store).

>>> cfg = TrainConfig(horizon_h=168)
>>> cfg.window_h, cfg.spec.windows
(168, (6, 24, 72, 168))
"""

from __future__ import annotations

import platform
import subprocess
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np
from sklearn.metrics import brier_score_loss, roc_auc_score
from threadpoolctl import threadpool_limits

from detection.features.pipeline import FeatureSpec
from detection.prediction.conditions import RegimeNormalizer
from detection.prediction.dataset import TrainingRows, blank_down, build_rows
from detection.prediction.history import ModelHistory
from detection.prediction.horizon import HorizonClassifier
from detection.prediction.predictor import NO_FAILURE, AssetPredictor
from detection.prediction.rul import RULInterval, RULRegressor
from detection.prediction.variant_prior import VariantPrior

ROOT = Path(__file__).resolve().parents[2]


class InsufficientHistory(ValueError):
    """The history holds too little to train on (no failures, too few rows)."""


@dataclass
class TrainConfig:
    horizon_h: float = 336.0
    rul_cap_h: float = 720.0
    stride_h: int = 6
    min_history_h: int = 24
    holdout: float = 0.25
    n_members: int = 3
    max_iter: int = 200
    random_state: int = 0
    regimes: int = 4   # load bands for regime-normalised sensors (0: off)
    regime_method: str = "bands"  # "clusters": duty cycles learned from every condition sensor
    threads: int = 1   # OpenMP threads for boosting (on a shared machine spinning threads cost 4-10x)
    variant_prior: bool = False  # learn each variant's failure rate (VariantPrior) and give it as a feature
    prior_folds: int = 5         # cross-fitting groups for the training rows' prior
    spec: FeatureSpec = field(default_factory=lambda: FeatureSpec(windows=(6, 24, 72, 168),
                                                                  ewm_alphas=(0.05, 0.2)))

    def __post_init__(self):
        if self.horizon_h <= 0 or self.rul_cap_h <= 0:
            raise ValueError("horizon_h and rul_cap_h must be > 0")
        if self.stride_h < 1 or self.min_history_h < 1:
            raise ValueError("stride_h and min_history_h must be >= 1")
        if self.regimes < 0:
            raise ValueError(f"regimes must be >= 0, got {self.regimes}")
        if self.regime_method not in ("bands", "clusters"):
            raise ValueError(f'regime_method must be "bands" or "clusters", got {self.regime_method!r}')
        if self.prior_folds < 2:
            raise ValueError(f"prior_folds must be >= 2, got {self.prior_folds}")
        if not 0 <= self.holdout < 1:
            raise ValueError(f"holdout must be in [0, 1), got {self.holdout}")

    @property
    def window_h(self) -> int:
        return self.spec.history

    def estimators(self) -> tuple[RULRegressor, HorizonClassifier]:
        common = dict(n_members=self.n_members, max_iter=self.max_iter, random_state=self.random_state)
        return (RULRegressor(cap=self.rul_cap_h, **common),
                HorizonClassifier(negative_class=NO_FAILURE, **common))  # unweighted: p_fail stays a probability


def code_version() -> str:
    try:
        version = importlib_metadata.version("prognos")
    except importlib_metadata.PackageNotFoundError:
        version = "unknown"
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        return f"{version}+g{rev}"
    except (OSError, subprocess.SubprocessError):
        return version


def _fit(rows: TrainingRows, cfg: TrainConfig) -> tuple[RULRegressor, HorizonClassifier]:
    rul, clf = cfg.estimators()
    with threadpool_limits(limits=cfg.threads, user_api="openmp"):
        rul.fit(rows.X[rows.rul_known], rows.rul[rows.rul_known])
        clf.fit(rows.X[rows.label_known], rows.label[rows.label_known].astype(str))
    return rul, clf


def evaluate(rul: RULRegressor, clf: HorizonClassifier, rows: TrainingRows, cap_h: float) -> dict:
    """Held-out figures: RUL error where the failure is observed and within the cap, horizon
    ROC AUC / Brier score / base rate, and mode accuracy on the rows that fail."""
    out: dict = {"rows": int(len(rows))}
    m = rows.rul_known & rows.uncensored & (rows.rul < cap_h)
    if m.any():
        err = rul.predict(rows.X[m]) - rows.rul[m]
        out.update(rul_rows=int(m.sum()), rul_mae_h=float(np.mean(np.abs(err))),
                   rul_rmse_h=float(np.sqrt(np.mean(err ** 2))))
    k = rows.label_known
    if k.any():
        y = rows.label[k] != NO_FAILURE
        p = clf.p_fail(rows.X[k])
        out.update(horizon_rows=int(k.sum()), horizon_base_rate=float(y.mean()),
                   horizon_brier=float(brier_score_loss(y, p)))
        if 0 < y.sum() < len(y):
            out["horizon_auc"] = float(roc_auc_score(y, p))
        if y.any():
            modes = clf.predict_mode(rows.X[k][y])
            out["mode_accuracy"] = float(np.mean(modes == rows.label[k][y]))
    return out


def calibrate_interval(rul: RULRegressor, held: TrainingRows, cap_h: float, metrics: dict) -> RULInterval | None:
    """The 10th-90th percentile interval of the time to failure, calibrated on the held-out
    assets' rows with a known (capped) remaining life; its coverage on those rows goes into
    ``metrics``. None when they are too few (the predictor then gives no interval)."""
    k = held.rul_known
    if k.sum() < 20:
        return None
    pred = rul.predict(held.X[k])
    interval = RULInterval(cap=cap_h).fit(pred, held.rul[k])
    lo, hi = interval.predict(pred)
    metrics.update(interval_rows=int(k.sum()),
                   interval_coverage_10_90=float(np.mean((lo <= held.rul[k]) & (held.rul[k] <= hi))))
    return interval


def fit_normalizer(history: ModelHistory, regimes: int, method: str = "bands") -> RegimeNormalizer | None:
    """Regime normaliser over the running hours of every asset, when the model has both
    condition sensors and monitored ones: ``regimes`` quantile bands of the first condition
    sensor, or (``method="clusters"``) duty cycles clustered from every condition sensor, their
    number learned (at most ``regimes``)."""
    cond = history.condition
    if regimes < 2 or not cond or len(cond) == len(history.sensors) or not history.assets:
        return None
    running = np.vstack([blank_down(a) for a in history.assets])
    if not np.isfinite(running[:, cond[0]]).any():
        return None
    if method == "clusters":
        return RegimeNormalizer(cond, "auto", "clusters", max_regimes=regimes).fit(running)
    return RegimeNormalizer(cond, regimes).fit(running)


def _bucket(history: ModelHistory) -> str:
    steps = sorted({a.step_h for a in history.assets}) or [1.0]
    return ", ".join("1 hour" if s == 1 else "1 day" if s == 24 else f"{s:g} hours" for s in steps)


def holdout_assets(history: ModelHistory, share: float, seed: int) -> np.ndarray:
    """Indices of the assets held out for the metrics: the same share of the assets that had
    a predictable failure and of those that had none (so the held-out part has failures to
    score), none when there are fewer than 4 assets.

    >>> from detection.prediction.history import AssetHistory
    >>> a = [AssetHistory(str(i), 0.0, np.zeros((1, 1)), failures=[(5.0, "w")] if i < 4 else [])
    ...      for i in range(12)]
    >>> held = holdout_assets(ModelHistory("M", ["x"], {}, a), 0.25, 0)
    >>> len(held), int((held < 4).sum())
    (3, 1)
    """
    n = len(history.assets)
    if n < 4 or share <= 0:
        return np.zeros(0, dtype=int)
    rng = np.random.default_rng(seed)
    failed = np.array([any(history.is_predictable(m) for _, m in a.failures) for a in history.assets])
    held = []
    for group in (np.flatnonzero(failed), np.flatnonzero(~failed)):
        k = int(round(share * len(group)))
        if len(group) >= 2:
            k = min(max(k, 1), len(group) - 1)  # keep at least one for training
        else:
            k = 0
        held.append(rng.permutation(group)[:k])
    return np.sort(np.concatenate(held)).astype(int)


def train(history: ModelHistory, cfg: TrainConfig, progress=None) -> tuple[AssetPredictor, dict]:
    """Fit the predictor of ``history.model_id``; returns it and its metadata. ``progress``
    wraps the per-asset feature loop (e.g. a tqdm partial)."""
    normalizer = fit_normalizer(history, cfg.regimes, cfg.regime_method)
    assets = history.assets
    columns = list(history.sensors)
    if normalizer is not None:
        assets = [replace(a, values=normalizer.augment(a.values)) for a in assets]
        columns = normalizer.names(history.sensors)
    rows = build_rows(assets, history.is_predictable, cfg.spec, cfg.horizon_h, cfg.rul_cap_h,
                      cfg.stride_h, cfg.min_history_h, progress=progress)
    n_fail = int(sum(1 for a in history.assets for _, mode in a.failures if history.is_predictable(mode)))
    if len(rows) == 0 or n_fail == 0:
        raise InsufficientHistory(
            f"{history.model_id}: {len(history.assets)} assets with telemetry, {len(rows)} training rows, "
            f"{n_fail} failures of a predictable mode; need at least one failure and its telemetry")
    labels = rows.label[rows.label_known]
    if not rows.rul_known.any() or len(set(labels)) < 2:
        raise InsufficientHistory(f"{history.model_id}: no failure within the horizon of any observed row")
    prior = None
    if cfg.variant_prior:      # cross-fitted for the training rows, from every asset for the predictor
        prior = VariantPrior.fit(history.assets, history.is_predictable)
        oof = VariantPrior.rates_out_of_fold(history.assets, history.is_predictable, cfg.prior_folds,
                                             cfg.random_state)
        rows.X = np.hstack([rows.X, prior.column(oof[rows.asset], cfg.horizon_h)[:, None]])

    held = holdout_assets(history, cfg.holdout, cfg.random_state)
    n_hold = len(held)
    metrics: dict = {"holdout_assets": int(n_hold)}
    interval = None
    if n_hold:
        test = np.isin(rows.asset, held)
        fit_rows = rows.subset(~test)
        if fit_rows.rul_known.any() and len(set(fit_rows.label[fit_rows.label_known])) >= 2:
            rul_h, clf_h = _fit(fit_rows, cfg)
            test_rows = rows.subset(test)
            metrics.update(evaluate(rul_h, clf_h, test_rows, cfg.rul_cap_h))
            interval = calibrate_interval(rul_h, test_rows, cfg.rul_cap_h, metrics)
    rul, clf = _fit(rows, cfg)

    names = cfg.spec.names(columns) + (["variant_prior"] if prior is not None else [])
    lo, hi = history.time_range
    predictor = AssetPredictor(history.model_id, history.sensors, cfg.window_h, cfg.horizon_h,
                               cfg.spec, rul, clf, normalizer=normalizer, interval=interval, prior=prior)
    failures: dict[str, int] = {}
    for a in history.assets:
        for _, mode in a.failures:
            failures[mode] = failures.get(mode, 0) + 1
    meta = {
        "trained_at": datetime.now(timezone.utc).isoformat(),
        "code_version": code_version(),
        "python": platform.python_version(),
        "data": {"from": lo.isoformat() if lo else None, "to": hi.isoformat() if hi else None,
                 "bucket": _bucket(history), "assets": [a.asset_id for a in history.assets],
                 "failures": failures, "predictable": history.predictable,
                 "rows": int(len(rows)), "rul_rows": int(rows.rul_known.sum()),
                 "horizon_rows": int(rows.label_known.sum()),
                 "horizon_positives": int((rows.label[rows.label_known] != NO_FAILURE).sum())},
        "sensors": history.sensors,
        "window_h": cfg.window_h,
        "horizon_h": cfg.horizon_h,
        "features": names,
        "regime": None if normalizer is None else normalizer.describe(history.sensors),
        "variant_prior": None if prior is None else prior.describe(),
        "config": {k: v for k, v in asdict(cfg).items() if k != "spec"} | {"spec": cfg.spec.to_dict()},
        "modes": [str(c) for c in clf.classes_ if c != NO_FAILURE],
        "metrics_holdout": metrics,
    }
    return predictor, meta
