"""The failure-mode evidence kernel agrees with its NumPy reference."""

import numpy as np
from hypothesis import given, settings, strategies as st

from detection.kernels.evidence import evidence_update, evidence_update_reference, mode_weights


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(0, 60), n_dev=st.integers(1, 4),
       n_s=st.integers(1, 5), n_modes=st.integers(0, 3), nan_frac=st.floats(0, 0.5))
def test_kernel_matches_reference(seed, n, n_dev, n_s, n_modes, nan_frac):
    rng = np.random.default_rng(seed)
    sig = rng.normal(size=(n_modes, n_s)) * (rng.random((n_modes, n_s)) < 0.6)
    w, absolute = mode_weights(sig, rng.random(n_modes) < 0.3)
    dev = rng.integers(0, n_dev, n).astype(np.int64)
    t = np.cumsum(rng.choice([0.0, 30.0, 60.0, 3600.0], n))   # repeats and gaps
    z = rng.normal(0, 4, (n, n_s))
    z[rng.random((n, n_s)) < nan_frac] = np.nan
    flag = rng.random(n) < 0.5
    rate0 = rng.random((n_dev, n_modes)) * 0.1
    last0 = np.where(rng.random(n_dev) < 0.5, np.nan, 0.0)
    r1, l1, r2, l2 = rate0.copy(), last0.copy(), rate0.copy(), last0.copy()
    a = evidence_update(dev, t, z, flag, w, absolute, r1, l1, 1800.0, 1.0)
    b = evidence_update_reference(dev, t, z, flag, w, absolute, r2, l2, 1800.0, 1.0)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(r1, r2, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(np.isnan(l1), np.isnan(l2))


def test_transient_spike_fades_and_lasting_fault_accumulates():
    w, absolute = mode_weights(np.array([[1.0, 0, 0], [0, 1.0, 1.0]]), np.array([True, False]))
    n = 2000
    t = np.arange(n) * 300.0                       # 5-minute readings
    z = np.zeros((n, 3)); flag = np.zeros(n, bool)
    z[100, 0], flag[100] = 9.0, True              # one spike on sensor 0
    z[1000:, 1:] = 5.0; flag[1000:] = True        # lasting fault on sensors 1-2
    rate, last = np.zeros((1, 2)), np.full(1, np.nan)
    out = evidence_update(np.zeros(n, np.int64), t, z, flag, w, absolute, rate, last, 6 * 3600.0, 1.0)
    assert out[100, 0] < 0.02 and out[999, 0] < 1e-3
    assert out[-1, 1] > 0.99 and out[-1, 0] < 1e-6


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(0, 50), n_dev=st.integers(1, 3),
       n_c=st.integers(1, 3), nan_frac=st.floats(0, 0.5))
def test_lagged_ema_matches_reference(seed, n, n_dev, n_c, nan_frac):
    from detection.kernels.lagged import lagged_ema, lagged_ema_reference

    rng = np.random.default_rng(seed)
    dev = rng.integers(0, n_dev, n).astype(np.int64)
    t = np.cumsum(rng.choice([0.0, 60.0, 600.0, 7200.0], n))
    C = rng.normal(0, 10, (n, n_c))
    C[rng.random((n, n_c)) < nan_frac] = np.nan
    taus = np.array([900.0, 3600.0])
    e1 = np.full((n_dev, n_c, 2), np.nan); l1 = np.full(n_dev, np.nan)
    e2, l2 = e1.copy(), l1.copy()
    a = lagged_ema(dev, t, C, taus, e1, l1)
    b = lagged_ema_reference(dev, t, C, taus, e2, l2)
    np.testing.assert_allclose(a, b, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(e1, e2, rtol=1e-12, equal_nan=True)
