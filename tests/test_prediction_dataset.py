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
