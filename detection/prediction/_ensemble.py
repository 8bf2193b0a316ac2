"""Bagged histogram gradient boosting: the members share hyper-parameters and differ in their
bootstrap sample of rows, their feature subsample and their seed; predictions are averaged."""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

MAX_SEED = np.iinfo(np.int32).max


def member_seeds(random_state, n_members: int) -> list[int]:
    rng = check_random_state(random_state)
    return [int(s) for s in rng.randint(0, MAX_SEED, size=n_members)]


def bootstrap_rows(n: int, seed: int, fraction: float) -> np.ndarray:
    """Row indices for one member: all rows when ``fraction >= 1``, else a sample without
    replacement (keeps the member's view of each life intact enough to learn trends)."""
    if fraction >= 1.0:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=max(1, int(round(n * fraction))), replace=False))


def check_params(est) -> None:
    if int(est.n_members) < 1:
        raise ValueError(f"n_members must be >= 1, got {est.n_members}")
    if not (0.0 < float(est.row_fraction) <= 1.0):
        raise ValueError(f"row_fraction must be in (0, 1], got {est.row_fraction}")
    if not (0.0 < float(est.max_features) <= 1.0):
        raise ValueError(f"max_features must be in (0, 1], got {est.max_features}")


def member_params(est, n_rows: int, seed: int) -> dict:
    """Keyword arguments of one gradient-boosting member of ``est`` (a RULRegressor or a
    HorizonClassifier) trained on ``n_rows`` rows with its own ``seed``."""
    return dict(
        max_iter=est.max_iter,
        learning_rate=est.learning_rate,
        max_leaf_nodes=est.max_leaf_nodes,
        min_samples_leaf=min(est.min_samples_leaf, max(1, n_rows // 4)),
        l2_regularization=est.l2_regularization,
        max_features=est.max_features,
        early_stopping=False,
        random_state=seed,
    )
