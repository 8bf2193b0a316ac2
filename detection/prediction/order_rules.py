"""The ``order_rules`` table (its one writer): the :class:`OrderRule` ``prognos train`` chose per
product model (:func:`detection.prediction.order_choice.choose_for_model`), which the detection
service applies to the predictor's p_fail (deciding the order row with ``OrderRule.first_order``
on the asset's predictions in its current life, as ``benchmarks.backblaze`` decides its order day).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import datetime

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from detection.prediction.order_choice import ChosenRule
from detection.prediction.order_rule import OrderRule

_FIELDS = {f.name for f in fields(OrderRule)}


@dataclass(frozen=True)
class StoredRule:
    model_id: str
    rule: OrderRule
    name: str
    failures: int
    held_out: dict
    predictor_version: str | None
    chosen_at: datetime


def _finite(x):
    """JSON without NaN (PostgreSQL's jsonb refuses it): NaN and infinities become null."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def save(conn: psycopg.Connection, chosen: ChosenRule, predictor_version: str | None = None) -> None:
    """Store (replace) the model's order rule."""
    rule = {f: getattr(chosen.rule, f) for f in sorted(_FIELDS)}
    conn.execute(
        """INSERT INTO order_rules (model_id, rule, name, failures, runs, candidates, held_out, predictor_version, chosen_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now())
           ON CONFLICT (model_id) DO UPDATE SET rule = EXCLUDED.rule, name = EXCLUDED.name,
               failures = EXCLUDED.failures, runs = EXCLUDED.runs, candidates = EXCLUDED.candidates,
               held_out = EXCLUDED.held_out, predictor_version = EXCLUDED.predictor_version,
               chosen_at = EXCLUDED.chosen_at""",
        (chosen.model_id, Jsonb(_finite(rule)), chosen.name, chosen.failures, chosen.runs, chosen.candidates,
         Jsonb(_finite(chosen.held_out)), predictor_version))


def delete(conn: psycopg.Connection, model_id: str) -> bool:
    """Drop the model's rule (its history no longer supports one); True if there was one."""
    return conn.execute("DELETE FROM order_rules WHERE model_id = %s", (model_id,)).rowcount > 0


def load(conn: psycopg.Connection, model_id: str) -> StoredRule | None:
    """The model's stored rule, None without one; a row that does not describe a valid rule
    raises ``ValueError`` naming the model and what is wrong."""
    row = conn.execute("SELECT rule, name, failures, held_out, predictor_version, chosen_at FROM order_rules "
                       "WHERE model_id = %s", (model_id,)).fetchone()
    if row is None:
        return None
    rule, name, failures, held_out, version, chosen_at = row
    if not isinstance(rule, dict):
        raise ValueError(f"order_rules row of {model_id!r}: rule must be a JSON object of OrderRule's fields, got {rule!r}")
    unknown = set(rule) - _FIELDS
    if unknown:
        raise ValueError(f"order_rules row of {model_id!r}: unknown rule fields {sorted(unknown)} "
                         f"(OrderRule has {sorted(_FIELDS)})")
    try:
        parsed = OrderRule(**rule)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"order_rules row of {model_id!r}: not a valid order rule: {exc}") from None
    return StoredRule(model_id, parsed, name, failures, held_out or {}, version, chosen_at)

