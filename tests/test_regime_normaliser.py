"""The condition normaliser beyond the range it was fitted on: a thermal sensor that follows load
and ambient with a lag, fitted on a warm week, keeps its residual level through a cold one (the
season must not look like a fault), and a normaliser restored from a checkpoint transforms
exactly as the fitted one, including one written with the older squared design."""

from __future__ import annotations

import numpy as np

from detection.kernels.lagged import lagged_ema
from detection.regime import ConditionNormalizer

STEP = 600.0
TAUS = np.array([900.0, 3600.0, 14400.0])


def _week(rng, n_dev: int, mean_amb: np.ndarray, t0: float, days: float = 7.0):
    """Rows (time-major) of devices on two shifts (06-22 h, a daily load cycle; stopped at
    night); a thermal sensor (tau 20 min) at 40 + 25 load + ambient while running, at ambient
    while stopped, plus noise."""
    t = t0 + STEP * np.arange(int(days * 86400 / STEP))
    hod = (t / 3600.0) % 24
    load = 0.7 + 0.15 * np.cos(2 * np.pi * (hod - 13) / 24)[:, None] + rng.normal(0, 0.03, (len(t), n_dev))
    amb = (mean_amb[None, :] + 4 * np.cos(2 * np.pi * (hod - 15) / 24)[:, None]
           + 2.5 * np.sin(2 * np.pi * t / (3.5 * 86400))[:, None])
    running = ((hod >= 6) & (hod < 22))[:, None]
    load = np.where(running, load, 0.0)
    target = np.where(running, 40 + 25 * load, 0.0) + amb
    temp = np.empty_like(target)
    temp[0] = target[0]
    a = 1 - np.exp(-STEP / 1200.0)
    for k in range(1, len(t)):
        temp[k] = temp[k - 1] + a * (target[k] - temp[k - 1])
    temp += rng.normal(0, 0.3, temp.shape)
    X = np.stack([load * 100, amb, temp], axis=2).reshape(-1, 3)
    return X, np.repeat(t, n_dev), np.tile(np.arange(n_dev), len(t))


def _lagged(X, ts, dev, n_dev, state=None):
    ema, last = state if state is not None else (np.full((n_dev, 2, len(TAUS)), np.nan), np.full(n_dev, np.nan))
    return lagged_ema(dev, ts, np.ascontiguousarray(X[:, :2]), TAUS, ema, last), (ema, last)


def test_a_cold_season_beyond_the_fitted_range_is_not_a_fault():
    rng = np.random.default_rng(3)
    n_dev = 12
    sites = rng.uniform(18, 26, n_dev)                          # a warm week to fit on
    X1, t1, d1 = _week(rng, n_dev, sites, 0.0)
    L1, state = _lagged(X1, t1, d1, n_dev)
    norm = ConditionNormalizer([0, 1]).fit(X1, L1)
    r1 = norm.transform(X1, L1)[:, 2].reshape(-1, n_dev)
    X2, t2, d2 = _week(rng, n_dev, sites - 22, t1[-1] + STEP)   # winter: 10-20 degC colder than any fitted
    L2, _ = _lagged(X2, t2, d2, n_dev, state)
    r2 = norm.transform(X2, L2)[:, 2].reshape(-1, n_dev)[144:]   # after a day: the synthetic jump settled
    sd = np.std(r1 - r1.mean(axis=0))
    shift = np.abs(r2.mean(axis=0) - r1.mean(axis=0)) / sd
    assert X2[:, 1].max() < X1[:, 1].min()
    assert shift.max() < 0.5, shift                             # the level holds (in residual sd)
    assert np.std(r2 - r2.mean(axis=0)) < 1.5 * sd              # and so does the spread


def test_restored_normaliser_transforms_as_the_fitted_one_in_either_design():
    rng = np.random.default_rng(5)
    X, ts, dev = _week(rng, 4, np.full(4, 15.0), 0.0, days=3)
    L, _ = _lagged(X, ts, dev, 4)
    for squares in (False, True):
        norm = ConditionNormalizer([0, 1], squares=squares).fit(X, L)
        back = ConditionNormalizer.restore([0, 1], norm.coef_, norm.on_, n_lagged=L.shape[1])
        assert back.squares is squares
        np.testing.assert_array_equal(back.transform(X, L), norm.transform(X, L))
