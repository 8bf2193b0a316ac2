"""Training rows from asset histories: lives are cut at failures and repairs, censored lives
give no false targets, downtime readings are ignored."""

from __future__ import annotations

import numpy as np

from detection.features.pipeline import FeatureSpec
from detection.prediction.dataset import build_rows
from detection.prediction.history import AssetHistory

SPEC = FeatureSpec(windows=(4,), ewm_alphas=())


def rows(asset, predictable=lambda m: m != "sudden", **kw):
    args = dict(horizon_h=24, cap_h=48, stride_h=1, min_history_h=4) | kw
    return build_rows([asset], predictable, SPEC, **args)


def test_failure_ends_life_with_exact_rul():
    a = AssetHistory("A", 1000.0, np.ones((50, 1)), failures=[(1040.0, "wear")])
    ds = rows(a)
    first = ds.time_h < 1040
    np.testing.assert_allclose(ds.rul[first], np.minimum(1040 - ds.time_h[first], 48))
    assert ds.rul_known[first].all() and ds.uncensored[first].all()
    assert set(ds.label[first & (ds.time_h >= 1016)]) == {"wear"}
    assert set(ds.label[first & (ds.time_h < 1016)]) == {""}


def test_repair_censors_the_life():
    a = AssetHistory("A", 0.0, np.ones((100, 1)), repairs=[70.0], down=[(70.0, 72.0)])
    ds = rows(a)
    life = ds.time_h <= 70
    # only known to survive until the repair: RUL known where >= cap, label where >= horizon
    assert np.array_equal(ds.rul_known[life], 70 - ds.time_h[life] >= 48)
    assert np.array_equal(ds.label_known[life], 70 - ds.time_h[life] >= 24)
    assert not ds.uncensored.any() and set(ds.label) == {""}


def test_unpredictable_failure_is_not_a_target():
    a = AssetHistory("A", 0.0, np.ones((60, 1)), failures=[(40.0, "sudden")])
    ds = rows(a)
    assert "sudden" not in set(ds.label) and not ds.uncensored.any()


def test_downtime_is_blanked_and_restarts_the_life():
    v = np.ones((60, 1))
    v[30:40] = 99.0  # readings while stopped must not leak into features
    a = AssetHistory("A", 0.0, v, failures=[(30.0, "wear")], down=[(30.0, 40.0)])
    ds = rows(a)
    after = ds.time_h > 30
    assert ds.time_h[after].min() == 40 + 4      # 4 h of history after the restart
    assert np.nanmax(ds.X) == 1.0


def test_empty_history():
    ds = build_rows([], lambda m: True, SPEC, 24, 48)
    assert len(ds) == 0


def test_daily_rows_count_days():
    """A product reporting once a day: rows are days, the horizon and targets stay in hours."""
    a = AssetHistory("D", 240.0, np.ones((20, 1)), failures=[(240.0 + 20 * 24.0, "wear")], step_h=24.0)
    ds = rows(a, horizon_h=7 * 24.0, cap_h=30 * 24.0, stride_h=24, min_history_h=24)
    assert len(ds) == 20 and a.end_h == 240.0 + 480.0
    np.testing.assert_allclose(ds.time_h, 240.0 + 24.0 * np.arange(1, 21))
    np.testing.assert_allclose(ds.rul, 24.0 * np.arange(19, -1, -1))
    assert ds.label.tolist() == [""] * 12 + ["wear"] * 8   # failing within 7 days (168 h) of the row's end


def test_bucket_readings_means_per_day():
    from detection.prediction.history import bucket_readings
    day = 86400.0
    h = bucket_readings("D", [10 * day + 5, 10 * day + 600, 12 * day], [[1.0, np.nan], [3.0, 4.0], [5.0, 6.0]],
                        step_h=24.0, failures=[(13 * 24.0, "wear")])
    assert h.start_h == 240.0 and h.step_h == 24.0 and h.failures == [(312.0, "wear")]
    np.testing.assert_allclose(h.values, [[2.0, 4.0], [np.nan, np.nan], [5.0, 6.0]])
    import pytest
    with pytest.raises(ValueError, match="one vals row"):
        bucket_readings("D", [0.0], [[1.0], [2.0]])
