"""The variant prior: failure rates per variant learned from the training assets only, shrunk
towards the product model's rate, cross-fitted for the training rows, and used by the trained
predictor when it is told an asset's variant."""

from __future__ import annotations

import numpy as np
import pytest

from detection.features.pipeline import FeatureSpec
from detection.prediction.history import AssetHistory, ModelHistory
from detection.prediction.training import TrainConfig, train
from detection.prediction.variant_prior import VariantPrior

ALL = lambda mode: True  # noqa: E731


def fleet(n_bad=30, n_good=90, days=40, seed=0):
    """Daily rows of one noise sensor (no precursor at all): the "bad" variant fails often, the
    "good" one rarely; only the variant tells them apart."""
    rng = np.random.default_rng(seed)
    assets = []
    for i in range(n_bad + n_good):
        variant = "bad" if i < n_bad else "good"
        fails = rng.random() < (0.5 if variant == "bad" else 0.03)
        n = int(rng.integers(20, days)) if fails else days
        failures = [((n + 0.5) * 24.0, "wear")] if fails else []
        assets.append(AssetHistory(f"A{i}", 0.0, rng.normal(size=(n, 1)), failures=failures, step_h=24.0,
                                   variant=variant))
    return assets


def test_rates_are_shrunk_towards_the_model_rate():
    assets = fleet()
    prior = VariantPrior.fit(assets, ALL)
    n_fail = sum(bool(a.failures) for a in assets)
    hours = sum(a.values.shape[0] * 24.0 for a in assets)
    assert prior.overall_per_h == pytest.approx(n_fail / hours)
    for v in ("bad", "good"):
        raw = prior.failures[v] / prior.hours[v]
        assert min(raw, prior.overall_per_h) < prior.rate(v) < max(raw, prior.overall_per_h)
    assert prior.rate("bad") > 5 * prior.rate("good")
    assert prior.rate(None) == prior.rate("new model") == prior.overall_per_h


def test_out_of_fold_rates_never_see_the_assets_own_group():
    assets = fleet()
    oof = VariantPrior.rates_out_of_fold(assets, ALL, folds=4, seed=1)
    group = np.random.default_rng(1).permutation(len(assets)) % 4
    for g in range(4):
        others = VariantPrior.fit([a for a, k in zip(assets, group) if k != g], ALL)
        for i in np.flatnonzero(group == g):
            assert oof[i] == others.rate(assets[i].variant)
    # the assets of one variant in one group share a rate: their own outcome cannot tell them apart
    for g in range(4):
        for v in ("bad", "good"):
            same = [oof[i] for i in np.flatnonzero(group == g) if assets[i].variant == v]
            assert len(set(same)) <= 1


def test_no_failure_is_a_clear_error():
    a = [AssetHistory("A", 0.0, np.zeros((5, 1)), variant="x")]
    with pytest.raises(ValueError, match="failure"):
        VariantPrior.fit(a, ALL)
    with pytest.raises(ValueError, match="folds"):
        VariantPrior.rates_out_of_fold(fleet(), ALL, folds=1)
    with pytest.raises(ValueError, match="prior_folds"):
        TrainConfig(prior_folds=1)


def test_the_trained_predictor_ranks_by_the_variant_it_is_told():
    cfg = TrainConfig(horizon_h=7 * 24.0, rul_cap_h=30 * 24.0, stride_h=24, holdout=0.0, regimes=0, n_members=1,
                      max_iter=30, spec=FeatureSpec(windows=(3,), ewm_alphas=(), crossings=False),
                      variant_prior=True)
    hist = ModelHistory("hdd", ["noise"], {"wear": True}, fleet())
    pred, meta = train(hist, cfg)
    assert meta["features"][-1] == "variant_prior" and set(meta["variant_prior"]["variants"]) == {"bad", "good"}
    window = np.random.default_rng(5).normal(size=(10, 1))
    bad, good = pred.predict(window, "bad").p_fail, pred.predict(window, "good").p_fail
    assert bad > good
    assert pred.predict(window).p_fail == pred.predict(window, "never seen").p_fail   # the model's rate
    (_, p_bad), (_, p_good) = pred.predict_histories([window, window], ["bad", "good"])
    assert p_bad[-1] == pytest.approx(bad) and p_good[-1] == pytest.approx(good)
    assert [o.p_fail for o in pred.predict_many([window, window], ["bad", "good"])] == [bad, good]
    with pytest.raises(ValueError, match="variants"):
        pred.predict_histories([window], ["bad", "good"])
    # without the prior the variant is not part of the model
    plain, meta = train(hist, TrainConfig(**{**cfg.__dict__, "variant_prior": False}))
    assert "variant_prior" not in meta["features"] and meta["variant_prior"] is None
    assert plain.predict(window, "bad") == plain.predict(window, "good")
