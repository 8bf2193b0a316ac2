"""What the fleet's own history says about each variant of a product model: its failure rate.

Assets of one product model often come in variants (a hard drive model inside "hdd", a motor
size, a hardware revision) whose failure rates differ far more than any sensor shows early on.
The manufacturer knows an asset's variant; the rate of each variant is learned here from the
training assets only: predictable failures per hour of observed life, shrunk towards the
product model's overall rate by a prior worth one expected failure (a variant with few hours
keeps close to the overall rate; an unknown or new variant gets the overall rate itself).

The predictor sees it as one more feature column, the expected number of failures within the
horizon at that rate. For the training rows it is cross-fitted: the assets are dealt into
``folds`` groups and each group's rates are learned from the other groups only, so a row never
sees its own outcome through the prior (leaving out one asset alone would give a variant's
failed assets a lower rate than its healthy ones: a leak a tree finds).

>>> import numpy as np
>>> from detection.prediction.history import AssetHistory
>>> def asset(i, variant, fails):
...     return AssetHistory(f"A{i}", 0.0, np.zeros((100, 1)), failures=[(50.0, "wear")] if fails else [],
...                         variant=variant)
>>> hist = [asset(i, "bad", i < 3) for i in range(4)] + [asset(4 + i, "good", False) for i in range(16)]
>>> prior = VariantPrior.fit(hist, lambda mode: True)
>>> round(prior.overall_per_h * 1e3, 3), sorted(prior.per_h)
(1.5, ['bad', 'good'])
>>> prior.rate("bad") > prior.overall_per_h > prior.rate("good"), prior.rate("never seen") == prior.overall_per_h
(True, True)
>>> oof = prior.rates_out_of_fold(hist, lambda mode: True, folds=4, seed=0)
>>> oof.shape, bool(oof[:4].mean() > oof[4:].mean())   # learned from the other folds only
((20,), True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from detection.prediction.history import AssetHistory


def _exposure(a: AssetHistory, is_predictable: Callable[[str], bool]) -> tuple[float, int]:
    """(hours of rows with any reading, predictable failures) of one asset."""
    live = int(np.isfinite(a.values).any(axis=1).sum()) if a.values.size else 0
    return live * a.step_h, sum(1 for _, mode in a.failures if is_predictable(mode))


@dataclass
class VariantPrior:
    overall_per_h: float                           # the product model's predictable failures per hour
    per_h: dict[str, float] = field(default_factory=dict)   # variant -> shrunk failures per hour
    hours: dict[str, float] = field(default_factory=dict)   # variant -> observed hours
    failures: dict[str, int] = field(default_factory=dict)  # variant -> predictable failures

    @classmethod
    def fit(cls, assets: Sequence[AssetHistory], is_predictable: Callable[[str], bool]) -> VariantPrior:
        hours: dict[str, float] = {}
        fails: dict[str, int] = {}
        for a in assets:
            h, f = _exposure(a, is_predictable)
            key = a.variant or ""
            hours[key] = hours.get(key, 0.0) + h
            fails[key] = fails.get(key, 0) + f
        total_h, total_f = sum(hours.values()), sum(fails.values())
        if total_h <= 0 or total_f == 0:
            raise ValueError("a variant prior needs observed hours and at least one predictable failure")
        out = cls(total_f / total_h, hours=hours, failures=fails)
        out.per_h = {v: out._shrunk(fails[v], hours[v]) for v in hours if v}
        return out

    def _shrunk(self, failures: float, hours: float) -> float:
        # gamma-Poisson posterior mean with a prior of one failure in 1 / overall hours
        return (failures + 1.0) / (hours + 1.0 / self.overall_per_h)

    def rate(self, variant: str | None) -> float:
        """Failures per hour of ``variant`` (the overall rate for an unknown one)."""
        return self.per_h.get(variant or "", self.overall_per_h)

    @staticmethod
    def rates_out_of_fold(assets: Sequence[AssetHistory], is_predictable: Callable[[str], bool],
                          folds: int = 5, seed: int = 0) -> np.ndarray:
        """Per training asset, its variant's rate learned from the other ``folds - 1`` groups
        of assets (assets dealt into groups at random, ``seed``)."""
        if folds < 2:
            raise ValueError(f"folds must be >= 2, got {folds}")
        group = np.random.default_rng(seed).permutation(len(assets)) % folds
        out = np.empty(len(assets))
        for g in range(folds):
            inside = np.flatnonzero(group == g)
            others = [a for a, k in zip(assets, group) if k != g]
            try:
                prior = VariantPrior.fit(others, is_predictable)
            except ValueError:      # the other groups hold no failure: no prior to learn
                out[inside] = 0.0
                continue
            out[inside] = [prior.rate(assets[i].variant) for i in inside]
        return out

    def column(self, rates_per_h, horizon_h: float) -> np.ndarray:
        """The feature column: expected failures within the horizon at each rate."""
        return np.asarray(rates_per_h, dtype=np.float64) * float(horizon_h)

    def describe(self) -> dict:
        return {"overall_per_day": self.overall_per_h * 24.0,
                "variants": {v: {"per_day": r * 24.0, "failures": self.failures[v], "days": self.hours[v] / 24.0}
                             for v, r in sorted(self.per_h.items())}}
