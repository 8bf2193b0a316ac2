"""Predicted time to repair with conformal intervals, learned from completed repairs.

**Point model.** A gradient-boosted tree ensemble (scikit-learn's
``HistGradientBoostingRegressor`` with its default settings, not tuned) predicts
``log(duration / nominal)``: how far a repair lands from the service manual's nominal MTTR
(``failure_modes.mttr_h``), from the features of :mod:`detection.mttr.features` (product
model, failure mode, kind, region, site, technician skill level, parts on hand, hour of day,
day of week; the site is target-encoded, the nominal figure is a feature too).  Working in log
ratios makes the error multiplicative, as repair times are.

**Intervals.** Split conformal, normalised: a random ``calibration_share`` of the repairs is
held out of the fit; a second tree model learns from the rest how large the error is for a
repair like this (out-of-fold absolute residuals: a planned visit errs less than a breakdown
that may wait for parts), and the held-out residuals, divided by it, calibrate a conformal
predictive system (crepes ``ConformalPredictiveSystem``), which gives a whole predictive
distribution per repair, so :meth:`MttrModel.quantiles` answers any quantile and
:meth:`MttrModel.predict_interval` is the (alpha/2, 1 - alpha/2) pair.  The point prediction
is the predictive median.  Mondrian: each (model, mode) with at least ``min_bin`` calibration
repairs is calibrated on its own residuals, so its coverage holds per group (``min_bin`` 100:
an interval from n residuals over-covers by up to 2 / (n + 1), so a group's 90% interval
covers 90-92%); the others are calibrated per failure mode across product models when those
have enough (sudden failures are rare per model), the rest pooled.

**Few repairs: the manual, honestly wide.**  A (model, mode) with fewer than ``min_repairs``
completed repairs (or any, while the whole history has fewer than ``min_fit``) is predicted
as the manual's nominal MTTR with a lognormal spread ``sigma`` = max(``fallback_sigma``, the
robust spread (1.4826 MAD) of log(actual / nominal) over every repair on record): centred on
the manual, a 90% interval of at least x0.27 .. x3.7 (``fallback_sigma`` 0.8, chosen before
any benchmark, as "a repair can take a quarter to four times the book figure").  Without
a nominal figure and without repairs there is no prediction (NaN).

**Unknown context.**  A prediction for an order nobody has planned yet does not know the
technician, the parts or the start time.  Those rows are answered by the mixture of the
predictive distributions over ``n_donors`` context values drawn from the training repairs
(the empirical joint distribution of skill, parts, hour and day among repairs of the same
kind, corrective or predictive, in the same region, whose technicians they are; assumed
independent of the other known features), rather than by guessing one value.

**Censoring.**  Only completed repairs are fitted.  Repairs still in progress are
right-censored, and dropping them would under-represent long repairs among recent starts;
:func:`detection.mttr.history.load_repairs` therefore fits only repairs that *started* at least
a censoring window before the as-of time (by default the 99th percentile of recorded
durations), so almost every repair of that period has finished; the repairs still open from
before the window are counted in the fit summary (``censored``), not fitted.

>>> rows = [{"model_id": "P", "mode": "seal_leak", "duration_h": 4.0 + i % 5} for i in range(3)]
>>> m = MttrModel().fit(rows, {("P", "seal_leak"): 5.0})
>>> m.routes([{"model_id": "P", "mode": "seal_leak"}]).tolist()     # 3 repairs: the manual
['manual']
>>> round(float(m.predict([{"model_id": "P", "mode": "seal_leak"}])[0]), 6)
5.0
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from crepes import ConformalPredictiveSystem
from scipy.stats import norm
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder, TargetEncoder
from threadpoolctl import threadpool_limits

from detection.mttr.features import CATEGORICAL, CONTEXT, NUMERIC, TARGET_ENCODED, frame, group_keys

MIN_H = 1.0 / 60.0              # a repair recorded as 0 h counts as one minute (log scale)
# the percentiles each component of a mixture (unknown context) is held at
GRID = np.concatenate([[1.0, 2.0, 3.0, 4.0], np.arange(5.0, 95.01, 2.5), [96.0, 97.0, 98.0, 99.0]])
ROUTES = ("group", "mode", "pooled", "manual", "none")
POOLED = "*"
SIGMA_FLOOR = 0.01               # log-ratio units: 1% of the repair time
# log |residual| is a noisy target: coarse trees (leaves of >= 100 repairs, 50 rounds); chosen
# on simulator seeds 5 and 6 (narrower intervals at the same coverage), checked on seed 21
DIFFICULTY_TREES = {"min_samples_leaf": 100, "max_iter": 50}


def _target_encoder(random_state: int) -> TargetEncoder:
    """Cross-fitted target encoding with seeded folds (scikit-learn >= 1.9 takes the folds
    as ``cv``; older versions as ``shuffle`` / ``random_state``)."""
    if inspect.signature(TargetEncoder).parameters["random_state"].default == "deprecated":
        return TargetEncoder(target_type="continuous", cv=KFold(5, shuffle=True, random_state=random_state))
    return TargetEncoder(target_type="continuous", shuffle=True, random_state=random_state)


def _pipeline(random_state: int, **trees) -> Pipeline:
    enc = ColumnTransformer([
        ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                               encoded_missing_value=np.nan), list(CATEGORICAL)),
        ("site", _target_encoder(random_state), list(TARGET_ENCODED)),
        ("num", "passthrough", list(NUMERIC)),
    ])
    hgb = HistGradientBoostingRegressor(categorical_features=list(range(len(CATEGORICAL))),
                                        random_state=random_state, **trees)
    return Pipeline([("features", enc), ("trees", hgb)])


def _check_qs(qs) -> np.ndarray:
    q = np.atleast_1d(np.asarray(qs, dtype=float))
    if q.ndim != 1 or not len(q) or not np.all((q > 0) & (q < 1)):
        raise ValueError(f"quantiles must be probabilities strictly between 0 and 1, got {qs!r}")
    return q


def _mixture(Q: np.ndarray, p: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """Quantiles ``qs`` of the equal-weight mixture of distributions given by their quantiles
    ``Q[k, j]`` at probabilities ``p[j]`` (linear between them; outside a component's finite
    quantiles its CDF is taken as 0 below and 1 above)."""
    cand = np.unique(Q[np.isfinite(Q)])
    if not len(cand):
        return np.full(len(qs), np.nan)
    F = np.zeros(len(cand))
    for k in range(len(Q)):
        fin = np.isfinite(Q[k])
        F += np.interp(cand, Q[k, fin], p[fin], left=0.0, right=1.0) if fin.any() else 0.0
    F /= len(Q)
    F = np.maximum.accumulate(F)
    out = np.interp(qs, F, cand)
    out[qs < F[0]] = -np.inf
    out[qs > F[-1]] = np.inf
    return out


class MttrModel:
    """See the module docstring.  ``MttrModel(...).fit(repairs, nominal)``; then
    :meth:`predict`, :meth:`predict_interval`, :meth:`quantiles` (hours) on rows as in
    :mod:`detection.mttr.features`."""

    def __init__(self, *, calibration_share: float = 0.3, min_bin: int = 100, min_repairs: int = 5,
                 min_fit: int = 70, fallback_sigma: float = 0.8, n_donors: int = 40,
                 random_state: int = 0, threads: int = 1):
        if not 0 < calibration_share < 1:
            raise ValueError("calibration_share must be in (0, 1)")
        if min_bin < 19:
            raise ValueError("min_bin must be >= 19 (fewer cannot bound a 90% interval)")
        self.calibration_share = calibration_share
        self.min_bin = min_bin
        self.min_repairs = min_repairs
        self.min_fit = min_fit
        self.fallback_sigma = fallback_sigma
        self.n_donors = n_donors
        self.random_state = random_state
        self.threads = threads

    # ---------------------------------------------------------------------------- fitting
    def fit(self, repairs, nominal: Mapping[tuple[str, str], float], *, censored: int = 0) -> "MttrModel":
        """``repairs``: completed repairs (rows with ``duration_h`` or started/finished
        times); ``nominal``: the manual's MTTR in hours per (model_id, mode).  One OpenMP
        thread (``threads``): the machine is shared with ingest and detection."""
        with threadpool_limits(limits=self.threads, user_api="openmp"):
            return self._fit(repairs, nominal, censored)

    def _fit(self, repairs, nominal, censored: int) -> "MttrModel":
        self.nominal_ = {(str(k[0]), str(k[1])): float(v) for k, v in nominal.items()
                         if v is not None and float(v) > 0}
        f = frame(repairs, nominal=self.nominal_, with_target=True)
        groups = group_keys(f)
        self.n_repairs_ = dict(Counter(groups.tolist()))
        dur = np.maximum(f["duration_h"].to_numpy(), MIN_H)
        self.default_offset_ = float(np.log(np.median(dur))) if len(dur) else 0.0
        r = np.log(dur) - self._offset(f)
        known = np.isfinite(f["log_nominal"].to_numpy())
        spread = 0.0
        if known.sum() >= 10:
            rk = r[known]
            spread = 1.4826 * float(np.median(np.abs(rk - np.median(rk))))
        self.sigma_ = max(self.fallback_sigma, spread)
        rng = np.random.default_rng(self.random_state)
        # context values to average over, per kind of repair (a planned visit brings its parts)
        # and region (each region has its own technicians), with at least n_donors repairs
        full = f.dropna(subset=list(CONTEXT))
        self.donors_ = {}
        by = full["kind"] + "|" + full["region"]
        for key, rows in [("*", full), *full.groupby("kind"), *full.groupby(by)]:
            if len(rows) >= (1 if key == "*" else self.n_donors):
                pick = rng.choice(len(rows), self.n_donors, replace=len(rows) < self.n_donors)
                self.donors_[key] = rows[list(CONTEXT)].to_numpy(float)[pick]
        self.pipeline_ = self.cps_ = self.cps_all_ = None
        self.bin_of_: dict[str, str] = {}
        n_cal = int(round(self.calibration_share * len(f)))
        if len(f) >= self.min_fit:
            perm = rng.permutation(len(f))
            cal, tr = perm[:n_cal], perm[n_cal:]
            self.pipeline_ = _pipeline(self.random_state).fit(f.iloc[tr], r[tr])
            self.difficulty_ = self._fit_difficulty(f.iloc[tr], r[tr])
            res = r[cal] - self.pipeline_.predict(f.iloc[cal])
            sig = self._sigmas(f.iloc[cal])
            self.bin_of_ = self._taxonomy(groups[cal], groups)
            b_cal = np.array([self.bin_of_[g] for g in groups[cal]], dtype=object)
            self.cps_ = ConformalPredictiveSystem().fit(res, sigmas=sig, bins=b_cal)
            self.cps_all_ = ConformalPredictiveSystem().fit(res, sigmas=sig)
            self.bin_n_ = dict(Counter(b_cal.tolist()))
        else:
            n_cal = 0
        self.summary_ = {
            "repairs": int(len(f)), "calibration": n_cal, "censored": int(censored),
            "fitted": self.pipeline_ is not None, "sigma_fallback": round(self.sigma_, 4),
            "groups": {g: {"repairs": n, "route": self._route_of(g)}
                       for g, n in sorted(self.n_repairs_.items())},
        }
        return self

    def refresh_nominal(self, nominal: Mapping[tuple[str, str], float]) -> None:
        """Take the manual's current figures for the (model, mode) the fitted model does not
        answer from repairs (new product models, changed manual figures); the learned ones
        keep the figure they were fitted against."""
        for (model_id, mode), h in nominal.items():
            key = (str(model_id), str(mode))
            if h is not None and float(h) > 0 and self._route_of(f"{key[0]}|{key[1]}") in ("manual", "none"):
                self.nominal_[key] = float(h)

    def _offset(self, f: pd.DataFrame) -> np.ndarray:
        ln = f["log_nominal"].to_numpy()
        return np.where(np.isfinite(ln), ln, self.default_offset_)

    def _fit_difficulty(self, f: pd.DataFrame, r: np.ndarray) -> Pipeline:
        """A model of how far off the point model is for a repair: coarse trees on log
        |residual| out of fold (3 folds of the training part), so a planned visit and a
        repair waiting for parts get intervals of their own width (normalised conformal)."""
        oof = np.empty(len(f))
        for a, b in KFold(3, shuffle=True, random_state=self.random_state).split(f):
            oof[b] = _pipeline(self.random_state).fit(f.iloc[a], r[a]).predict(f.iloc[b])
        return _pipeline(self.random_state, **DIFFICULTY_TREES).fit(
            f, np.log(np.maximum(np.abs(r - oof), SIGMA_FLOOR)))

    def _sigmas(self, f: pd.DataFrame) -> np.ndarray:
        return np.maximum(np.exp(self.difficulty_.predict(f)), SIGMA_FLOOR)

    def _taxonomy(self, g_cal: np.ndarray, groups: np.ndarray) -> dict[str, str]:
        """Mondrian category of each (model, mode): itself when it has ``min_bin`` calibration
        repairs, else its failure mode across models (``*|mode``) when those left together
        have, else the pooled rest (``*``)."""
        counts = Counter(g_cal.tolist())
        out = {g: g for g in set(groups.tolist()) if counts.get(g, 0) >= self.min_bin}
        by_mode = Counter(g.partition("|")[2] for g in g_cal.tolist() if g not in out)
        for g in set(groups.tolist()) - set(out):
            mode = g.partition("|")[2]
            out[g] = f"*|{mode}" if by_mode[mode] >= self.min_bin else POOLED
        return out

    def _route_of(self, g: str) -> str:
        model_id, _, mode = g.partition("|")
        if self.pipeline_ is not None and self.n_repairs_.get(g, 0) >= self.min_repairs:
            b = self.bin_of_.get(g, POOLED)
            return "group" if b == g else ("mode" if b != POOLED else "pooled")
        return "manual" if (model_id, mode) in self.nominal_ else "none"

    def _check_fitted(self):
        if not hasattr(self, "summary_"):
            raise RuntimeError("MttrModel is not fitted; call fit(repairs, nominal) first")

    # ---------------------------------------------------------------------------- predicting
    def routes(self, X) -> np.ndarray:
        """Which distribution answers each row: ``group`` (its own Mondrian calibration),
        ``mode`` (its failure mode's, across models), ``pooled``, ``manual`` (the nominal
        fallback) or ``none`` (no prediction)."""
        self._check_fitted()
        return np.array([self._route_of(g) for g in group_keys(frame(X))], dtype=object)

    def quantiles(self, X, qs: Sequence[float]) -> np.ndarray:
        """Predictive quantiles in hours, shape ``(n_rows, len(qs))``; NaN where there is no
        prediction, 0 / inf where the calibration is too small for so extreme a quantile."""
        self._check_fitted()
        with threadpool_limits(limits=self.threads, user_api="openmp"):
            return self._quantiles(X, qs)

    def _quantiles(self, X, qs) -> np.ndarray:
        q = _check_qs(qs)
        f = frame(X, nominal=self.nominal_)
        n = len(f)
        out = np.full((n, len(q)), np.nan)
        if not n:
            return out
        groups = group_keys(f)
        route = np.array([self._route_of(g) for g in groups], dtype=object)
        offset = self._offset(f)
        man = route == "manual"
        out[man] = offset[man, None] + self.sigma_ * norm.ppf(q)[None]
        learned = np.nonzero(np.isin(route, ["group", "mode", "pooled"]))[0]
        if len(learned):
            out[learned] = offset[learned, None] + self._learned(f.iloc[learned], groups[learned], q)
        with np.errstate(over="ignore"):
            return np.exp(out)

    def _learned(self, f: pd.DataFrame, groups: np.ndarray, q: np.ndarray) -> np.ndarray:
        """log-ratio quantiles of rows answered by the fitted model (mixtures over missing context)."""
        n = len(f)
        f = f.reset_index(drop=True)
        missing = f[list(CONTEXT)].isna().to_numpy()
        need = missing.any(1) & bool(self.donors_)
        rep = np.where(need, self.n_donors, 1)
        owner = np.repeat(np.arange(n), rep)
        ef = f.iloc[owner].reset_index(drop=True)
        if need.any():
            starts = np.cumsum(rep) - rep
            k = np.arange(len(ef)) - starts[owner]
            keys = (f["kind"] + "|" + f["region"]).to_numpy(dtype=object)[owner]
            for key in set(keys[need[owner]].tolist()):
                kind = key.partition("|")[0]
                donors = self.donors_.get(key, self.donors_.get(kind, self.donors_["*"]))
                this = keys == key
                for j, c in enumerate(CONTEXT):
                    fill = need[owner] & missing[owner, j] & this
                    ef.loc[fill, c] = donors[k[fill], j]
        r_hat = self.pipeline_.predict(ef)
        sig = self._sigmas(ef)
        P = np.unique(np.concatenate([GRID, q * 100.0]) if need.any() else q * 100.0)  # sorted
        Q = np.empty((len(ef), len(P)))
        eg = groups[owner]
        # the pooled rest's own calibration when it has enough repairs, else every repair's
        bins = np.array([self.bin_of_.get(g, POOLED) for g in eg], dtype=object)
        own = (bins != POOLED) | (self.bin_n_.get(POOLED, 0) >= 19)
        Q[:] = np.where(P < 50, -np.inf, np.inf)[None]      # beyond what a calibration resolves
        for b in set(bins[own].tolist()) | ({None} if (~own).any() else set()):
            sel = own & (bins == b) if b is not None else ~own
            n_cal = self.bin_n_[b] if b is not None else sum(self.bin_n_.values())
            # n residuals resolve percentiles 100/(n+1) .. 100 - 100/(n+1); ask for those only
            ok = (P >= 100.0 / (n_cal + 1) - 1e-9) & (P <= 100.0 - 100.0 / (n_cal + 1) + 1e-9)
            lo, hi = P[ok & (P < 50)], P[ok & (P >= 50)]
            cps, kw = (self.cps_, {"bins": bins[sel]}) if b is not None else (self.cps_all_, {})
            res = cps.predict(r_hat[sel], sigmas=sig[sel], lower_percentiles=lo if len(lo) else None,
                              higher_percentiles=hi if len(hi) else None, **kw)
            Q[np.ix_(sel, ok)] = np.asarray(res, float).reshape(int(sel.sum()), int(ok.sum()))
        out = np.empty((n, len(q)))
        cols = np.searchsorted(P, q * 100.0)
        starts = np.cumsum(rep) - rep
        for i in range(n):
            block = Q[starts[i]:starts[i] + rep[i]]
            out[i] = block[0, cols] if rep[i] == 1 else _mixture(block, P / 100.0, q)
        return out

    def predict(self, X) -> np.ndarray:
        """Predicted repair time in hours (the predictive median)."""
        return self.quantiles(X, [0.5])[:, 0]

    def predict_interval(self, X, alpha: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
        """Conformal interval ``(lo, hi)`` in hours with nominal coverage ``1 - alpha``."""
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        b = self.quantiles(X, [alpha / 2, 1 - alpha / 2])
        return b[:, 0], b[:, 1]
