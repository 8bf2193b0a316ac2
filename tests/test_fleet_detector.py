"""FleetDetector as the online detection service uses it: devices on demand, interleaved rows,
timestamps with gaps, one detector per product model, and the multivariate detector."""

from __future__ import annotations

import numpy as np

from detection.fleet import FleetConfig, FleetDetector

CFG = FleetConfig(warmup=30)


def test_result_shapes_and_ranges():
    det = FleetDetector(4, CFG, capacity=3)
    X = np.random.default_rng(0).normal(size=(300, 4))
    res = det.update_rows(np.arange(300) % 3, X)
    assert res.z.shape == (300, 4) and res.z.dtype == np.float64
    assert res.fused.shape == (300,) and res.flag.dtype == np.bool_
    ok = np.isfinite(res.fused)
    assert ((res.fused[ok] >= 0) & (res.fused[ok] <= 1)).all()
    assert np.array_equal(res.flag, np.nan_to_num(res.fused, nan=-1) >= CFG.threshold)


def test_devices_added_on_demand_keep_existing_state():
    rng = np.random.default_rng(1)
    det = FleetDetector(2, CFG)
    det.ensure_devices(2)
    det.update_rows(np.repeat([0, 1], 100), rng.normal(size=(200, 2)))
    before = det.ew[:2].copy()
    det.ensure_devices(5)
    det.ensure_devices(4)                      # never shrinks
    assert det.n_devices == 5 and np.array_equal(det.ew[:2], before)
    for n in range(6, 200):                    # one at a time: storage grows geometrically
        det.ensure_devices(n)
    assert det.n_devices == 199 and det.ew.shape[0] < 400
    assert FleetDetector.from_bytes(det.to_bytes()).n_devices == 199
    res = det.update_rows(np.array([0, 4]), rng.normal(size=(2, 2)))
    assert np.isfinite(res.fused[0]) and np.isnan(res.fused[1])   # the new device is cold


def test_interleaved_rows_equal_per_device_processing():
    rng = np.random.default_rng(2)
    dev = rng.integers(0, 6, 2000)
    X = rng.normal(size=(2000, 3))
    cfg = FleetConfig(warmup=30, mahalanobis=False)   # the model-level correlation is shared
    together = FleetDetector(3, cfg, capacity=6).update_rows(dev, X)
    for d in range(6):
        alone = FleetDetector(3, cfg, capacity=1).update_rows(np.zeros((dev == d).sum(), dtype=np.int64), X[dev == d])
        np.testing.assert_array_equal(together.fused[dev == d], alone.fused)


def test_gaps_in_time_weigh_by_elapsed_time():
    rng = np.random.default_rng(3)
    cfg = FleetConfig(warmup=20, interval_s=10.0, alpha=0.05)
    X = rng.normal(size=(200, 1))
    X[100:] += 3.0                                   # a level change during a long gap
    t = np.arange(200) * 10.0
    t[100:] += 1e5                                   # 10,000 nominal intervals of silence
    a = FleetDetector(1, cfg, capacity=1)
    a.update_rows(np.zeros(200, dtype=np.int64), X, t)
    b = FleetDetector(1, cfg, capacity=1)
    b.update_rows(np.zeros(200, dtype=np.int64), X)  # the same rows without timestamps
    assert a.dev[0, 1] == t[-1]
    assert not np.array_equal(a.ew, b.ew)
    assert np.isfinite(a.ew).all()


def test_one_detector_per_model_with_different_sensor_counts():
    rng = np.random.default_rng(4)
    pumps, fans = FleetDetector(14, CFG, capacity=2), FleetDetector(3, CFG, capacity=2)
    r1 = pumps.update_rows(np.zeros(50, dtype=np.int64), rng.normal(size=(50, 14)))
    r2 = fans.update_rows(np.zeros(50, dtype=np.int64), rng.normal(size=(50, 3)))
    assert r1.z.shape[1] == 14 and r2.z.shape[1] == 3


def test_mahalanobis_flags_a_broken_correlation_the_marginals_miss():
    rng = np.random.default_rng(5)
    n_dev, steps = 50, 200
    load = rng.normal(size=(steps, n_dev))
    X = np.stack([load, load + 0.1 * rng.normal(size=(steps, n_dev))], axis=-1)   # temp follows load
    dev = np.tile(np.arange(n_dev), steps)
    X = X.reshape(-1, 2)
    probe = np.array([[1.5, -1.5]])                 # each within 1.5 sigma, together absurd
    with_mv = FleetDetector(2, FleetConfig(warmup=30), capacity=n_dev)
    without = FleetDetector(2, FleetConfig(warmup=30, mahalanobis=False), capacity=n_dev)
    with_mv.update_rows(dev, X)
    without.update_rows(dev, X)
    f_mv = with_mv.update_rows(np.array([0]), probe).fused[0]
    f_marg = without.update_rows(np.array([0]), probe).fused[0]
    assert f_marg < 0.1 and f_mv >= FleetConfig().threshold
