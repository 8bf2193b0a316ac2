"""The detector set on small real-shaped slices: quantised steady sensors, counters, stuck
sensors, re-baselining, and the same process at one reading a second and one every ten minutes.

All run the service's own detector configuration (``ServiceConfig().detector``) through the
same code the service runs (``bucket_samples`` then ``FleetDetector.update_rows``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from detection.fleet import FleetDetector
from detection.kernels import sensor as Q
from detection.kernels.resample import bucket_samples, new_state
from detection.service import BUCKET_GAP_ALPHA, ServiceConfig

CFG = ServiceConfig().detector            # 10-minute unit, one-day warm-up
T0 = 1.7e9 - (1.7e9 % 86400)


def _run(X: np.ndarray, t: np.ndarray, config=CFG):
    """One device through the service's bucket summaries and detector set."""
    det = FleetDetector(X.shape[1], config, capacity=1)
    dev, tt, V, ex = bucket_samples(np.zeros(len(t), np.int64), t, np.ascontiguousarray(X), config.interval_s,
                                    BUCKET_GAP_ALPHA, config.res_floor, *new_state(1, X.shape[1]))
    return det, det.update_rows(dev, V, tt, ex=ex), tt


def _quantised(n: int, seed: int = 0) -> np.ndarray:
    """A thermocouple holding about 22.26 and reporting in 0.01 steps (slow wander, tiny noise)."""
    rng = np.random.default_rng(seed)
    wander = np.cumsum(rng.normal(0.0, 0.0005, n))
    return np.round(22.26 + wander - np.linspace(0, wander[-1], n) + rng.normal(0.0, 0.003, n), 2)


def test_a_quantised_steady_sensor_does_not_alarm_and_its_resolution_is_learned():
    n = 144 * 14                                               # two weeks, one reading per 10 min
    t = T0 + 600.0 * np.arange(n)
    rng = np.random.default_rng(1)
    X = np.c_[_quantised(n), 50.0 + rng.normal(0.0, 1.0, n)]
    det, res, _ = _run(X, t)
    steps = np.unique(X[:, 0]) * 100.0
    assert np.allclose(steps, np.round(steps)) and np.ptp(X[:, 0]) <= 0.06    # 0.01 steps, a few of them
    assert abs(det.sq[0, 0, Q.RES] - 0.01) < 1e-9               # the resolution, learned
    assert not res.flag.any()
    assert np.nanmax(np.abs(res.z[:, 0])) <= 3.0                # one or two steps, never a huge z
    unfloored = _run(X, t, replace(CFG, res_floor=0.0))[1]
    assert unfloored.flag.any()                                # without the floor the same data alarms
    X[-144:, 0] += 0.30                                        # a real move of 30 steps does alarm
    assert _run(X, t)[1].flag[-144:].any()


def test_a_counter_that_only_rises_is_scored_on_its_increments():
    n = 144 * 10
    t = T0 + 600.0 * np.arange(n)
    rng = np.random.default_rng(2)
    inc = rng.poisson(20.0, n).astype(float)                   # e.g. pump cycles per 10 minutes
    cycles = np.cumsum(inc)
    cycles[n // 2:] -= cycles[n // 2]                          # the controller resets it once
    det, res, _ = _run(cycles[:, None], t)
    assert det.sq[0, 0, Q.KIND] == Q.KIND_COUNTER
    assert not res.flag.any()                                  # neither the climb nor the reset alarms
    inc[-100:] *= 3.0                                          # cycling three times as often
    det, res, _ = _run(np.cumsum(inc)[:, None], t)
    assert res.flag[-100:].any() and not res.flag[:-100].any()


def test_a_stuck_sensor_is_a_sensor_fault_not_an_anomaly():
    n = 144 * 6
    t = T0 + 600.0 * np.arange(n)
    x = 50.0 + np.random.default_rng(3).normal(0.0, 1.0, n)
    x[-60:] = x[-61]                                           # frozen at its last value
    det, res, _ = _run(x[:, None], t, replace(CFG, context=False))
    assert res.stuck[-50:, 0].all() and not res.stuck[:-60].any()
    assert not res.flag[-60:].any()                            # no failure-mode evidence from it


def test_rebaseline_learns_a_sustained_new_normal():
    n = 144 * 6
    t = T0 + 600.0 * np.arange(n)
    x = 50.0 + np.random.default_rng(4).normal(0.0, 1.0, n)
    x[n // 2:] += 8.0                                          # a new duty: eight sd higher, for good
    det = FleetDetector(1, CFG, capacity=1)
    first = det.update_rows(np.zeros(n // 2 + 10, np.int64), x[: n // 2 + 10, None], t[: n // 2 + 10])
    assert first.flag[-10:].any()
    det.rebaseline([0])                                        # the planner: not a fault
    rest = det.update_rows(np.zeros(n - n // 2 - 10, np.int64), x[n // 2 + 10:, None], t[n // 2 + 10:])
    assert np.isnan(rest.fused[: CFG.warmup]).all()            # learning the new normal
    assert not rest.flag[CFG.warmup:].any()                    # then quiet at the new level
    assert det.sq[0, 0, Q.RES] > 0                             # what the sensor is, kept


def _process(seconds: float, fault_at: float, kind: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One pump sensor's residual (after the regime normaliser), sampled every ``seconds``:
    noise around its normal level, quantised to 0.01, with a fault."""
    rng = np.random.default_rng(seed)
    t = T0 + np.arange(0.0, 5 * 86400.0, seconds)
    x = 40.0 + rng.normal(0.0, 0.5, len(t))
    after = t >= T0 + fault_at
    if kind == "drift":                                        # e.g. a bearing warming up
        x[after] += (t[after] - t[after][0]) / 3600.0 * 0.5
    return t, np.round(x, 2)[:, None]


def test_one_second_and_ten_minute_streams_of_the_same_process_give_the_same_verdict():
    fault_at = 3.5 * 86400.0
    for kind in ("healthy", "drift"):
        verdicts = []
        for seconds in (1.0, 600.0):
            t, X = _process(seconds, fault_at, kind, seed=5)
            _, res, tt = _run(X, t)
            before = res.flag[tt < T0 + fault_at]
            after = res.flag[tt >= T0 + fault_at]
            assert before.mean() < 0.01, (kind, seconds, before.mean())
            verdicts.append(bool(after.any()))
        assert verdicts == [kind == "drift"] * 2, (kind, verdicts)


def test_spikes_between_ten_minute_readings_still_count_at_one_reading_a_second():
    t, X = _process(1.0, 0.0, "healthy", seed=6)
    X = X.copy()
    spike_at = np.flatnonzero((t >= T0 + 4 * 86400.0) & (t % 600.0 == 123.0))[:6]
    X[spike_at, 0] += 6.0                                      # one-second electrical spikes
    _, res, tt = _run(X, t)
    kept = np.isin(t, tt)
    assert not kept[spike_at].any()                            # no spike is a reading the level sees
    hit = np.searchsorted(tt, t[spike_at])                     # the buckets holding them
    assert res.flag[hit].all() and not res.flag[tt < T0 + 4 * 86400.0].any()


def test_the_service_rebaselines_the_sensors_of_a_false_alarms_mode_only():
    from detection.catalog import ModelInfo
    from detection.service import ModelState

    info = ModelInfo("M", ["load", "temp", "vib"], ["fouling"], np.array([[False, True, False]]),
                     np.array([[0.0, 1.0, 0.0]]), np.array([False]), np.array([False]), {"fouling": 8.0})
    st = ModelState(info, ServiceConfig())
    idx = st.rows_for(["dev"] * 200)
    t = T0 + 600.0 * np.arange(200)
    st.det.update_rows(idx, np.random.default_rng(7).normal(size=(200, 3)), t)
    st.rate[0, 0], st.ordered[0, 0] = 0.8, True
    st.rebaseline("dev", "fouling")
    assert st.det.cnt[0, :, 0].tolist() == [200, 0, 200]      # only the mode's sensor learns afresh
    assert st.rate[0, 0] == 0.0 and not st.ordered[0, 0]      # its evidence starts over
    st.rebaseline("unknown", "fouling")                        # nothing to do, no error


def _daily(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One asset reporting once a day (as a drive reports SMART, or a meter its daily read): a
    temperature in whole degrees, a pressure in 0.01 steps and an operating-hours counter, read
    at a jittered time of day, with one day in twenty missing."""
    rng = np.random.default_rng(seed)
    t = T0 + 86400.0 * np.arange(n) + rng.uniform(-3600.0, 3600.0, n)
    hours = 1000.0 + np.cumsum(rng.uniform(20.0, 24.0, n)).round()
    X = np.c_[np.round(32.0 + rng.normal(0.0, 1.5, n)), np.round(4.0 + rng.normal(0.0, 0.05, n), 2), hours]
    keep = rng.random(n) >= 0.05
    return t[keep], X[keep]


def test_one_reading_a_day_is_scored_like_any_other_cadence():
    """The detectors run on a daily stream (after their warm-up of ``CFG.warmup`` readings), a
    steady asset raises no alarm, and a lasting step of the temperature is flagged within a
    month of readings; the same steady stream's ten-minute twin is as quiet."""
    for seed in range(3):
        t, X = _daily(400, seed)
        det, res, tt = _run(X, t)
        assert len(tt) == len(t)                                   # one row per reading, none held
        assert np.isfinite(res.fused[CFG.warmup + 5:]).all()       # scored after the warm-up
        assert det.sq[0, 2, Q.KIND] == Q.KIND_COUNTER              # operating hours: a counter
        assert not res.flag.any(), (seed, np.flatnonzero(res.flag))
        step_at = np.searchsorted(t, T0 + 300 * 86400.0)
        X[step_at:, 0] += 4.0                                      # running 4 degrees hotter for good
        res = _run(X, t)[1]
        assert not res.flag[:step_at].any()
        assert res.flag[step_at:step_at + 30].any(), seed
    ten_minute = T0 + 600.0 * np.arange(len(t))                    # the same readings, 10 min apart
    assert not _run(X[:step_at], ten_minute[:step_at])[1].flag.any()
