"""Numba kernels against the NumPy reference (random, NaN, constant input, gaps, irregular t)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detection.fleet import FleetConfig, FleetDetector
from detection.kernels.fleet import MV_MARGIN
from detection.kernels.mahalanobis import inverse_correlation, quad_form, top_eigenvalue, update_comoment

CFG = FleetConfig(warmup=8, mv_min_weight=0.05, mv_alpha=0.05, refractory=3, suppress=0.5, relearn=6,
                  interval_s=10.0, phase_period=600.0, ctx_window=5, ctx_min_surprise=0.5, ctx_refractory=2,
                  stuck_p=1e-3)
STATE = ("ew", "rb", "cs", "dev", "sq", "wb", "cc", "cring")
EXACT = ("cnt", "wph", "cg", "pg", "cprev")


def _stream(seed: int, n: int, n_dev: int, s: int, kind: str):
    rng = np.random.default_rng(seed)
    dev = rng.integers(0, n_dev, n)
    if kind == "constant":
        X = np.full((n, s), 3.0)
    elif kind == "steps":
        X = rng.normal(size=(n, s)) + np.where(np.arange(n)[:, None] > n // 2, 8.0, 0.0)
    elif kind == "quantised":                 # a steady sensor with 0.01 steps, some stuck runs
        X = np.round(22.26 + 0.01 * rng.integers(-2, 3, size=(n, s)), 2)
        X[n // 3: n // 3 + 30] = 22.26
    elif kind == "counter":                   # only rises, with a reset
        X = np.cumsum(rng.integers(0, 4, size=(n, s)), axis=0).astype(float)
        X[2 * n // 3:] -= X[2 * n // 3]
    else:
        X = rng.standard_t(3, size=(n, s)) * rng.uniform(0.1, 100, s)
    X[rng.random((n, s)) < 0.15] = np.nan
    X[rng.random(n) < 0.05] = np.nan          # whole rows missing
    t = 1.7e9 + np.cumsum(rng.exponential(10.0, n))   # irregular sampling, some long gaps
    t[rng.random(n) < 0.02] += 5000.0
    t[rng.random(n) < 0.1] = np.nan           # some rows without timestamps
    return dev, X, np.sort(t)


def _assert_same(a: FleetDetector, b: FleetDetector, ra, rb):
    np.testing.assert_allclose(ra.z, rb.z, rtol=1e-9, atol=1e-9, equal_nan=True)
    np.testing.assert_allclose(ra.fused, rb.fused, rtol=1e-9, atol=1e-9, equal_nan=True)
    np.testing.assert_array_equal(ra.flag, rb.flag)
    np.testing.assert_array_equal(ra.stuck, rb.stuck)
    np.testing.assert_allclose(ra.ctx, rb.ctx, rtol=1e-9, atol=1e-9, equal_nan=True)
    for name in STATE:
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-9, atol=1e-9, equal_nan=True)
    for name in EXACT:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def _exceedances(seed: int, shape: tuple) -> np.ndarray:
    """Exceedance evidence of fast streams (signed decades), NaN on most cells."""
    rng = np.random.default_rng(seed + 1)
    ex = rng.choice([-1.0, 1.0], size=shape) * rng.exponential(3.0, size=shape)
    ex[rng.random(shape) < 0.8] = np.nan
    return ex


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), n_dev=st.integers(1, 6), s=st.integers(1, 5),
       kind=st.sampled_from(["random", "constant", "steps", "quantised", "counter"]), batches=st.integers(1, 4),
       with_ex=st.booleans())
def test_numba_matches_numpy_reference(seed, n_dev, s, kind, batches, with_ex):
    dev, X, t = _stream(seed, 240, n_dev, s, kind)
    ex = _exceedances(seed, X.shape) if with_ex else None
    fast, slow = FleetDetector(s, CFG, n_dev), FleetDetector(s, CFG, n_dev)
    for part in np.array_split(np.arange(len(dev)), batches):
        e = None if ex is None else ex[part]
        ra = fast.update_rows(dev[part], X[part], t[part], ex=e)
        rb = slow.update_rows(dev[part], X[part], t[part], ex=e, engine="numpy")
        _assert_same(fast, slow, ra, rb)
    np.testing.assert_allclose(fast.rinv, slow.rinv, rtol=1e-8, atol=1e-8)


def test_flagged_rows_undo_their_learning_step_like_the_reference():
    """The kernel learns while it scores and undoes the step when the row is flagged; level
    shifts flag rows, gate sensors and re-baseline them (``relearn``) on both paths."""
    rng = np.random.default_rng(5)
    n, s = 3000, 4
    dev = rng.integers(0, 3, n)
    X = rng.normal(size=(n, s)) + np.where(np.arange(n)[:, None] > 1500, 6.0, 0.0)
    X[rng.random(n) < 0.03, 1] += 9.0                   # spikes flag single rows
    t = 1.7e9 + 10.0 * np.arange(n)
    fast, slow = FleetDetector(s, CFG, 3), FleetDetector(s, CFG, 3)
    ra = fast.update_rows(dev, X, t)
    rb = slow.update_rows(dev, X, t, engine="numpy")
    _assert_same(fast, slow, ra, rb)
    assert ra.flag.sum() > 20


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), s=st.integers(2, 16), ridge=st.sampled_from([0.01, 0.05, 0.3]))
def test_mahalanobis_screening_bound_holds(seed, s, ridge):
    """The kernel skips ``zc' Rinv zc`` when ``top x |zc|^2`` (with its margin) cannot pass the
    screen: the bound must hold for correlated, ill-conditioned and clipped z-vectors."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(s, s)) * rng.uniform(0.0, 3.0, size=s)
    Z = np.clip(rng.normal(size=(500, s)) @ mix, -6.0, 6.0)
    C, _ = update_comoment(np.zeros((s, s)), 0.0, Z, 0.01)
    Rinv = inverse_correlation(C, ridge)
    top = top_eigenvalue(Rinv)
    y = np.empty(s)
    for zc in np.clip(rng.normal(size=(50, s)) * rng.uniform(0.0, 6.0, size=(50, 1)), -6.0, 6.0):
        zc[rng.random(s) < 0.2] = 0.0
        assert quad_form(Rinv, zc, y) <= top * float(zc @ zc) * (1.0 + MV_MARGIN) + MV_MARGIN


def test_parallel_equals_serial_bitwise():
    dev, X, t = _stream(7, 5000, 40, 4, "random")
    a, b = FleetDetector(4, CFG, 40), FleetDetector(4, CFG, 40)
    ra = a.update_rows(dev, X, t, threads=True)
    rb = b.update_rows(dev, X, t, threads=False)
    assert np.array_equal(ra.fused, rb.fused, equal_nan=True)
    assert np.array_equal(a.ew, b.ew)


def test_checkpoint_restore_mid_stream_is_exact():
    dev, X, t = _stream(11, 3000, 5, 3, "steps")
    whole = FleetDetector(3, CFG, 5)
    first = FleetDetector(3, CFG, 5)
    r_whole = [whole.update_rows(dev[:1000], X[:1000], t[:1000]), whole.update_rows(dev[1000:], X[1000:], t[1000:])]
    first.update_rows(dev[:1000], X[:1000], t[:1000])
    restored = FleetDetector.from_bytes(first.to_bytes())
    r_rest = restored.update_rows(dev[1000:], X[1000:], t[1000:])
    assert np.array_equal(r_whole[1].fused, r_rest.fused, equal_nan=True)
    assert np.array_equal(r_whole[1].z, r_rest.z, equal_nan=True)
    assert restored.config == CFG
    twin = first.copy()
    assert np.array_equal(twin.update_rows(dev[1000:], X[1000:], t[1000:]).fused, r_rest.fused, equal_nan=True)


def test_flagged_points_are_not_learned_slow_fault_stays_abnormal():
    rng = np.random.default_rng(3)
    det = FleetDetector(1, FleetConfig(warmup=50, alpha=0.02, robust_lr=0.02, context=False))   # the z gate
    det.ensure_devices(1)
    n = 3000
    drift = np.where(np.arange(n) > 1000, (np.arange(n) - 1000) * 0.01, 0.0)  # +20 sd by the end
    X = (rng.normal(size=n) + drift)[:, None]
    res = det.update_rows(np.zeros(n, dtype=np.int64), X)
    assert res.flag[:1000][50:].mean() < 0.01
    assert res.flag[-500:].all()          # the fault never becomes the new normal
    assert det.rb[0, 0, 0] < 8.0          # learning stopped once flagged; the signal ends near 20


def test_warmup_gives_nan_then_scores():
    det = FleetDetector(2, FleetConfig(warmup=10), 3)
    X = np.random.default_rng(0).normal(size=(60, 2))
    res = det.update_rows(np.repeat(np.arange(3), 20), X)
    for d in range(3):
        f = res.fused[d * 20:(d + 1) * 20]
        assert np.isnan(f[:10]).all() and np.isfinite(f[10:]).all()
    assert ((res.fused[np.isfinite(res.fused)] >= 0) & (res.fused[np.isfinite(res.fused)] <= 1)).all()


def test_bad_input_is_rejected_clearly():
    det = FleetDetector(2, capacity=2)
    with pytest.raises(ValueError, match="ensure_devices"):
        det.update_rows(np.array([2]), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="shape"):
        det.update_rows(np.array([0]), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="inf"):
        det.update_rows(np.array([0]), np.array([[np.inf, 0.0]]))
    with pytest.raises(ValueError, match="invalid FleetConfig"):
        FleetConfig(alpha=0.0)
    with pytest.raises(ValueError, match="checkpoint"):
        FleetDetector.from_bytes(b"garbage")


def test_reset_devices_makes_them_cold():
    det = FleetDetector(1, FleetConfig(warmup=5), 2)
    det.update_rows(np.zeros(20, dtype=np.int64), np.ones((20, 1)))
    det.reset_devices([0])
    res = det.update_rows(np.zeros(3, dtype=np.int64), np.ones((3, 1)))
    assert np.isnan(res.fused).all()
