"""The versioned model store: round trip, never overwrites, ignores incomplete versions."""

from __future__ import annotations

import numpy as np
import pytest

from detection.features.pipeline import FeatureSpec
from detection.prediction import store
from detection.prediction.horizon import HorizonClassifier
from detection.prediction.predictor import NO_FAILURE, AssetPredictor
from detection.prediction.rul import RULRegressor

SPEC = FeatureSpec(windows=(3, 6), ewm_alphas=(0.3,))


def make_predictor(model_id="PMP-200") -> AssetPredictor:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, len(SPEC.names(["a", "b"]))))
    small = dict(n_members=1, max_iter=10, random_state=0)
    rul = RULRegressor(cap=500, **small).fit(X, np.abs(X[:, 0]) * 200)
    clf = HorizonClassifier(negative_class=NO_FAILURE, **small).fit(
        X, np.where(X[:, 0] > 1, "seal_leak", NO_FAILURE))
    return AssetPredictor(model_id, ["a", "b"], SPEC.history, 336, SPEC, rul, clf)


def test_round_trip_and_versions(tmp_path):
    pred = make_predictor()
    window = np.random.default_rng(1).normal(size=(10, 2))
    p1 = store.save(tmp_path, pred, {"note": "first"})
    p2 = store.save(tmp_path, pred, {"note": "second"})
    assert (p1.name, p2.name) == ("v0001", "v0002")
    assert store.list_versions(tmp_path, "PMP-200") == ["v0001", "v0002"]
    latest = store.load_latest(tmp_path, "PMP-200")
    assert latest.version == "v0002" and latest.metadata["note"] == "second"
    assert latest.sensors == ["a", "b"] and latest.window_h == 6
    assert latest.predict(window) == pred.predict(window)
    assert store.load(tmp_path, "PMP-200", "v0001").metadata["note"] == "first"


def test_never_overwrites_a_claimed_or_incomplete_version(tmp_path):
    (tmp_path / "PMP-200" / "v0001").mkdir(parents=True)   # a trainer crashed mid-save
    path = store.save(tmp_path, make_predictor(), {})
    assert path.name == "v0002"
    assert store.list_versions(tmp_path, "PMP-200") == ["v0002"]
    with pytest.raises(FileNotFoundError):
        store.load(tmp_path, "PMP-200", "v0001")
    assert list((tmp_path / "PMP-200" / "v0001").iterdir()) == []


def test_missing_model_and_bad_ids(tmp_path):
    assert store.load_latest(tmp_path, "NOPE") is None
    for bad in ("../etc", "", "a/b", ".."):
        with pytest.raises(ValueError):
            store.load_latest(tmp_path, bad)


def test_predict_validates_the_window():
    pred = make_predictor()
    with pytest.raises(ValueError, match="2"):
        pred.predict(np.ones((5, 3)))
    with pytest.raises(ValueError):
        pred.predict(np.ones((0, 2)))
    out = pred.predict(np.full((4, 2), np.nan))  # no data at all: still an answer, not a crash
    assert 0 <= out.p_fail <= 1 and np.isfinite(out.rul_h)
    long = np.random.default_rng(2).normal(size=(100, 2))
    assert pred.predict(long) == pred.predict(long[-pred.window_h:])


def test_predict_many_matches_predict():
    pred = make_predictor()
    rng = np.random.default_rng(3)
    windows = [rng.normal(size=(n, 2)) for n in (1, 6, 20)]
    assert pred.predict_many(windows) == [pred.predict(w) for w in windows]
    assert pred.predict_many([]) == []
