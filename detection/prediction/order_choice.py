"""Choosing an :class:`~detection.prediction.order_rule.OrderRule` on held-out predictions: the
one selection code ``prognos train`` and ``benchmarks.backblaze`` both run.

Orders are scored per **life** (an asset's rows from its start or last repair to its failure or
its last row): one order per life, on the row :meth:`OrderRule.first_order` picks (what the
detection service calls). An order in a life that ends in a failure is true, with a lead of
``fail_row - row`` rows; in a life that does not, false; in a *censored* life (ended by a repair
without a failure: the platform acted, the truth is unknown) neither. ``horizon_rows`` is the
horizon in rows ("caught within the horizon": lead <= horizon_rows).

Each candidate rule is ranked on held-out runs by the mean of :data:`CHOICE_KEYS`: the recall
within the horizon when the ranking places ``budget`` orders, then the best such recall at order
precision >= 0.5, then the predictor's average precision (the same for every rule of one model);
ties go to the first candidate (:func:`candidate_rules` lists the plainest first).

>>> import numpy as np
>>> lives = [Life(10, fail_row=9), Life(10)]
>>> p = [np.r_[np.full(7, 0.1), 0.6, 0.7, 0.8], np.full(10, 0.2)]
>>> fig = rule_figures(lives, p, None, OrderRule(0.5), budget=1, horizon_rows=7)
>>> fig["orders"], fig["recall_h"], fig["median_lead_rows"], fig["recall_h_at_budget"]
(1, 1.0, 2.0, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detection.prediction.order_rule import OrderRule, first_crossing

#: the rise rules tried with every urgency: the risk must have risen ``factor``-fold over the last ``rows`` rows
RISE_GRID = tuple((k, f) for k in (1, 2, 3, 5, 7) for f in (1.5, 2.0, 3.0, 5.0))
#: remaining-life weights tried with every rule (``OrderRule.urgency``; 0: p_fail alone)
URGENCY_GRID = (0.0, 1.0, 2.0, 3.0)
#: what the choice ranks candidates by (mean over the held-out runs; later keys break ties)
CHOICE_KEYS = ("recall_h_at_budget", "recall_h_at_precision_0_5", "average_precision")


@dataclass(frozen=True)
class Life:
    """One life of an asset as scored: its number of rows (predictions), the row position of its
    failure (``None``: no failure in it) and whether it was censored (ended without a failure by
    a repair: an order in it counts neither true nor false)."""

    n_rows: int
    fail_row: float | None = None
    censored: bool = False


def candidate_rules(threshold: float, urgencies: tuple[float, ...] = URGENCY_GRID,
                    urgency_from_h: float = 0.0) -> tuple[OrderRule, ...]:
    """For each urgency of ``urgencies`` (plainest first): the first crossing, then every rule
    of RISE_GRID."""
    return tuple(r for u in urgencies for r in (OrderRule(threshold, urgency=u, urgency_from_h=urgency_from_h),)
                 + tuple(OrderRule(threshold, k, f, urgency=u, urgency_from_h=urgency_from_h) for k, f in RISE_GRID))


def rule_name(rule: OrderRule) -> str:
    """A short name: ``first_crossing`` or ``rise_{K}d_x{F}``, with ``_u{A}`` for an urgency
    (``d``: a row, a day in the benchmark where the rule was first measured)."""
    base = f"rise_{rule.rise_rows}d_x{rule.rise_factor:g}" if rule.rise_rows else "first_crossing"
    return f"{base}_u{rule.urgency:g}" if rule.urgency else base


def score_orders(lives: list[Life], order_row: list[int | None], horizon_rows: float,
                 rows_per_month: float) -> dict:
    """Orders (one per life, at a row of it, or None) against the failures."""
    n_fail = sum(life.fail_row is not None for life in lives)
    months = sum(life.n_rows for life in lives) / rows_per_month
    true = true_h = false = 0
    leads = []
    for life, r in zip(lives, order_row):
        if r is None:
            continue
        if life.fail_row is None:
            false += not life.censored
            continue
        lead = life.fail_row - r
        true += 1
        true_h += lead <= horizon_rows
        leads.append(float(lead))
    orders = true + false
    return {"orders": orders, "failures": n_fail, "true_orders": true, "true_h": int(true_h),
            "recall": true / n_fail if n_fail else float("nan"),
            "recall_h": true_h / n_fail if n_fail else float("nan"),
            "precision": true / orders if orders else float("nan"),
            "precision_h": true_h / orders if orders else float("nan"),
            "false_orders_per_1000_months": 1000.0 * false / months if months else float("nan"),
            "median_lead_rows": float(np.median(leads)) if leads else float("nan")}


def curve_points(lives: list[Life], scores: list[np.ndarray], budget: int, horizon_rows: float,
                 rows_per_month: float = 1.0) -> dict:
    """The ranking swept over every threshold (each life's peak score is the highest threshold it
    crosses): recall within the horizon when ``budget`` orders are placed, and the best such
    recall at order precision >= 0.5 (at most twice as many orders as failures)."""
    peaks = np.array([s.max() if s.size else -np.inf for s in scores])
    rank = np.argsort(-peaks, kind="stable")
    at_budget = float("nan")
    budget = min(budget, int((peaks > 0).sum()))   # a life whose score stays 0 never orders
    if 0 < budget <= len(rank):
        lv = peaks[rank[budget - 1]]
        at_budget = score_orders(lives, [first_crossing(s, lv) for s in scores], horizon_rows, rows_per_month)["recall_h"]
    n_fail = sum(life.fail_row is not None for life in lives)
    best = 0.0
    top = peaks[rank[: 2 * n_fail]]          # precision >= 0.5 allows at most 2 orders a failure
    for lv in np.unique(top[np.isfinite(top) & (top > 0)]):
        members = np.flatnonzero(peaks >= lv)   # ties included
        if len(members) > 2 * n_fail:
            continue
        res = score_orders([lives[i] for i in members], [first_crossing(scores[i], lv) for i in members],
                           horizon_rows, rows_per_month)
        if res["orders"] and res["true_orders"] >= 0.5 * res["orders"]:
            best = max(best, res["true_h"] / n_fail if n_fail else 0.0)
    return {"recall_h_at_budget": at_budget, "recall_h_at_precision_0_5": best}


def rule_figures(lives: list[Life], scores: list[np.ndarray], ruls: list[np.ndarray] | None, rule: OrderRule,
                 budget: int, horizon_rows: float, rows_per_month: float = 1.0) -> dict:
    """Orders placed by ``rule`` on the lives' p_fail histories (``scores``; ``ruls``: the
    predicted remaining lives in hours, for a rule with urgency), each on the row
    :meth:`OrderRule.first_order` picks, and the curve points of the rule's ranking (the rise
    condition does not depend on the threshold, so sweeping the threshold over the rule's order
    score is the rule at every threshold)."""
    ruls = ruls if ruls is not None else [None] * len(scores)
    gated = [rule.order_score(s, r) for s, r in zip(scores, ruls)]
    # the order row OrderRule.first_order picks, from the order scores computed once
    out = score_orders(lives, [first_crossing(g, rule.threshold) for g in gated], horizon_rows, rows_per_month)
    return out | curve_points(lives, gated, budget, horizon_rows, rows_per_month)


def best(runs: dict, keys: tuple[str, ...] = CHOICE_KEYS) -> tuple:
    """``runs``: candidate -> its figures on each held-out run (dicts holding ``keys``). Returns
    (the candidate with the best mean of ``keys``, compared in order; ties: the first listed, and
    {candidate: {key: mean}})."""
    if not runs:
        raise ValueError("no candidate to choose from")
    means = {c: tuple(float(np.nanmean([r[k] for r in rs])) for k in keys) for c, rs in runs.items()}
    top = max(means, key=lambda c: means[c])       # max keeps the first of equals
    return top, {c: dict(zip(keys, m)) for c, m in means.items()}


# -- the product's choice: prognos train, from the platform's own history ---------------------

#: fewest failures of a predictable mode a product model's history needs before ``prognos train``
#: chooses an order rule: each inner run holds out half the assets, so about 10 held-out failures,
#: where one failure is 0.1 of recall; with fewer, ranking 84 candidates is a coin toss (the
#: Backblaze benchmark's inner halves held about 30).
MIN_FAILURES = 20
#: inner runs (seeds 101, 102, ...), each halving the assets: held-out figures are their mean
INNER_RUNS = 2
#: p_fail that opens an order: more likely than not to fail within the horizon (the classifier is
#: unweighted, so p_fail is a probability); not tuned, as in the benchmark
THRESHOLD = 0.5


def asset_lives(a, rul: np.ndarray, p: np.ndarray, is_predictable, min_rows: int = 1
                ) -> list[tuple[Life, np.ndarray, np.ndarray]]:
    """An asset's rows cut into lives at its repairs and failures (as the trainer cuts them),
    each with its rows' p_fail and remaining life: rows from the ``min_rows``-th after the first
    reading after the previous repair or failure (the trainer's ``min_history_h``: earlier rows
    are not predicted), up to the end of the life (a row's prediction is made at the end of the
    row). A life ending in a failure of a predictable mode has it at ``fail_row`` (its
    lead in rows from a row); one ended by a repair or an unpredictable failure is censored."""
    ends: dict[float, str | None] = {r: None for r in a.repairs}
    ends.update({t: m for t, m in a.failures})         # a failure at the same time wins
    cuts = np.array(sorted(ends))
    seg = np.searchsorted(cuts, a.row_start_h, side="right")
    seen = np.isfinite(a.values).any(axis=1)
    out = []
    for s in np.unique(seg):
        idx = np.flatnonzero((seg == s) & seen)
        if idx.size == 0:
            continue
        i0 = idx[0] + min_rows - 1
        i1 = np.flatnonzero(seg == s)[-1] + 1
        if s < len(cuts):
            end_t, mode = float(cuts[s]), ends[float(cuts[s])]
            made = a.start_h + (np.arange(i0, i1) + 1.0) * a.step_h     # when each row's prediction is made
            i1 = i0 + int(np.searchsorted(made, end_t, side="right"))  # none after the life ended
            fails = mode is not None and is_predictable(mode)
            life = Life(int(i1 - i0), (end_t - a.start_h) / a.step_h - i0 - 1 if fails else None, censored=not fails)
        else:
            life = Life(int(i1 - i0))                                   # running at the end of the history
        if i1 > i0 and life.n_rows > 0:
            out.append((life, p[i0:i1], rul[i0:i1]))
    return out


def held_out_run(predictor, assets, is_predictable, step_h: float, min_rows: int = 1
                 ) -> tuple[list[Life], list, list, float]:
    """The predictor's day-by-day (row-by-row) predictions on held-out assets, as lives: (lives,
    p_fail histories, remaining-life histories, average precision of "fails within the horizon"
    on the rows whose label is known)."""
    from sklearn.metrics import average_precision_score

    from detection.prediction.dataset import blank_down

    lives, ps, ruls = [], [], []
    for a, (rul, p) in zip(assets, predictor.predict_histories([blank_down(a) for a in assets])):
        for life, lp, lr in asset_lives(a, rul, p, is_predictable, min_rows):
            lives.append(life)
            ps.append(lp)
            ruls.append(lr)
    horizon_rows = predictor.horizon_h / step_h
    y, known = [], []
    for life in lives:
        left = (life.fail_row if life.fail_row is not None else life.n_rows - 1) - np.arange(life.n_rows)
        pos = np.zeros(life.n_rows, bool) if life.fail_row is None else left <= horizon_rows
        y.append(pos)
        known.append(pos | (left >= horizon_rows))
    y, known, pa = (np.concatenate(x) if x else np.zeros(0) for x in (y, known, ps))
    known = known.astype(bool)
    ap = float(average_precision_score(y[known], pa[known])) if known.any() and y[known].any() else float("nan")
    return lives, ps, ruls, ap


@dataclass(frozen=True)
class ChosenRule:
    """An order rule chosen on a product model's history, and how: the candidates' count, the
    history's failures, and the chosen rule's mean held-out figures over the inner runs."""

    model_id: str
    rule: OrderRule
    name: str
    failures: int
    runs: int
    candidates: int
    held_out: dict


def choose_for_model(history, cfg, threshold: float = THRESHOLD, min_failures: int = MIN_FAILURES,
                     runs: int = INNER_RUNS, progress=None) -> ChosenRule | str:
    """Choose the order rule of one product model from its own history, as
    ``benchmarks.backblaze --choose N --choose-rule-only --urgency-from-h HORIZON`` does inside a
    split's train drives: ``runs`` times (seeds 101, ...), the trainer (``cfg``, no hold-out of
    its own) learns on half of the assets (half of those that failed), the candidate rules are
    scored on the other half, and the best mean of :data:`CHOICE_KEYS` wins. The budget of
    orders is the held-out lives' number of failures (no fleet-wide rule of thumb to match here:
    as many orders as failures). Returns the :class:`ChosenRule`, or why none was chosen (a
    string: too few failures, or no inner run could be trained)."""
    from dataclasses import replace

    from detection.prediction.training import InsufficientHistory, holdout_assets, train

    n_fail = sum(1 for a in history.assets for _, m in a.failures if history.is_predictable(m))
    if n_fail < min_failures:
        return f"{n_fail} failures of a predictable mode in the history; an order rule needs at least {min_failures}"
    rules = candidate_rules(threshold, URGENCY_GRID, urgency_from_h=cfg.horizon_h)
    step_h = min((a.step_h for a in history.assets), default=1.0)
    scored: dict[int, list[dict]] = {}
    done = 0
    for j in progress(range(runs)) if progress else range(runs):
        held = holdout_assets(history, 0.5, 101 + j)
        if not len(held):
            continue
        mask = np.zeros(len(history.assets), bool)
        mask[held] = True
        fit = replace(history, assets=[a for a, h in zip(history.assets, mask) if not h])
        try:
            predictor, _ = train(fit, replace(cfg, holdout=0.0, random_state=cfg.random_state + 101 + j))
        except InsufficientHistory:
            continue
        test = [a for a, h in zip(history.assets, mask) if h]
        lives, ps, ruls, ap = held_out_run(predictor, test, history.is_predictable, step_h,
                                           max(1, int(round(cfg.min_history_h / step_h))))
        budget = sum(life.fail_row is not None for life in lives)
        for i, rule in enumerate(rules):
            fig = rule_figures(lives, ps, ruls, rule, budget, predictor.horizon_h / step_h, 24 * 365.25 / 12 / step_h)
            scored.setdefault(i, []).append(fig | {"average_precision": ap})
        done += 1
    if not done:
        return "no inner run could be trained (every half of the assets lacked failures within the horizon)"
    top, means = best(scored)
    figs = scored[top]
    held_out = means[top] | {k: float(np.nanmean([f[k] for f in figs])) for k in
                             ("orders", "failures", "recall", "recall_h", "precision", "precision_h",
                              "false_orders_per_1000_months", "median_lead_rows")} | {
        "first_crossing": means[0], "budget": "as many orders as held-out failures",
        "step_h": step_h, "threshold": threshold}
    return ChosenRule(history.model_id, rules[top], rule_name(rules[top]), n_fail, done, len(rules), held_out)
