"""One generated contract suite run against every streaming detector (in the spirit of
river/checks): pickling, no mutation of inputs, reproducibility, scoring does not learn,
missing values, and better than chance on a labelled stream."""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from detection.anomaly import CUSUM, ContextNovelty, EWMAZScore, FusedDetector, RobustZScore, StreamingMahalanobis
from detection.fleet import FleetConfig

SENSORS = ["a", "b", "c"]
FACTORIES = {
    "EWMAZScore": lambda: EWMAZScore(warmup=30),
    "RobustZScore": lambda: RobustZScore(warmup=30),
    "CUSUM": lambda: CUSUM(warmup=30),
    "ContextNovelty": lambda: ContextNovelty(warmup=100),
    "StreamingMahalanobis": lambda: StreamingMahalanobis(warmup=30),
    "FusedDetector": lambda: FusedDetector(SENSORS, FleetConfig(warmup=30)),
}


def labelled_stream(seed: int = 0, length: int = 1200):
    """Correlated sensors with injected spikes on random sensors (labels = 1 there)."""
    rng = np.random.default_rng(seed)
    n = 1200
    base = rng.normal(size=n)
    X = np.column_stack([base, 0.8 * base + 0.6 * rng.normal(size=n), rng.normal(size=n)]) * [1.0, 3.0, 0.5]
    X += [10.0, 50.0, -2.0]
    y = np.zeros(n, dtype=int)
    idx = rng.choice(np.arange(200, n), size=40, replace=False)
    y[idx] = 1
    for i in idx:
        j = rng.integers(0, 3)
        X[i, j] += rng.choice([-1, 1]) * rng.uniform(6, 10) * [1.0, 3.0, 0.5][j]
    stream = [dict(zip(SENSORS, row)) for row in X.tolist()]
    return stream[:length], y[:length]


def run(det, stream):
    scores = []
    for x in stream:
        scores.append(det.score_one(x))
        det.learn_one(x)
    return np.array(scores)


@pytest.fixture(params=sorted(FACTORIES))
def make(request):
    return FACTORIES[request.param]


def test_better_than_chance_on_labelled_stream(make):
    stream, y = labelled_stream()
    s = run(make(), stream)
    auc = roc_auc_score(y[200:], s[200:])
    assert auc > 0.8, auc


def test_reproducible(make):
    stream, _ = labelled_stream(1, 400)
    assert np.array_equal(run(make(), stream), run(make(), stream))


def test_pickle_round_trip_continues_identically(make):
    stream, _ = labelled_stream(2, 400)
    det = make()
    run(det, stream[:250])
    twin = pickle.loads(pickle.dumps(det))
    assert np.array_equal(run(det, stream[250:]), run(twin, stream[250:]))


def test_inputs_are_not_mutated(make):
    stream, _ = labelled_stream(3, 100)
    det = make()
    for x in stream:
        before = copy.deepcopy(x)
        det.score_one(x)
        det.learn_one(x)
        assert x == before


def test_score_one_does_not_learn(make):
    stream, _ = labelled_stream(4, 300)
    a, b = make(), make()
    for x in stream[:200]:
        a.learn_one(x)
        b.learn_one(x)
    for x in stream[200:]:
        a.score_one(x)
        a.score_one(x)              # scoring twice changes nothing
    probe = stream[-1]
    assert a.score_one(probe) == b.score_one(probe)


def test_missing_values_are_tolerated(make):
    stream, _ = labelled_stream(5, 300)
    det = make()
    run(det, stream)
    for x in ({"a": None, "b": 50.0}, {"c": float("nan")}, {}, {"a": 10.0, "b": 50.0, "c": -2.0}):
        s = det.score_one(x)
        assert math.isfinite(s) and s >= 0.0
        det.learn_one(x)


def test_clone_is_fresh_with_same_params(make):
    stream, _ = labelled_stream(6, 100)
    det = make()
    run(det, stream)
    fresh = det.clone()
    assert type(fresh) is type(det)
    assert np.array_equal(run(fresh, stream), run(make(), stream))
