"""The features of one repair (or one planned repair) and their checks.

A row describes a repair as a planner knows it before it starts:

==================  =========================================================================
``model_id``        product model (required)
``mode``            failure mode (required)
``kind``            ``corrective`` (default), ``predictive`` or ``preventive``
``site_id``         the asset's site (target-encoded: many sites, few repairs each)
``region``          the site's region (the technicians' territory)
``skill_level``     the technician's skill level, 1 (junior) .. 3 (expert); unknown: missing
``parts_on_hand``   whether the parts are on hand when the work starts; unknown: missing
``start``           when the work starts (UTC); gives ``hour`` (0-23) and ``dow`` (Monday 0)
==================  =========================================================================

``skill_level``, ``parts_on_hand``, ``hour`` and ``dow`` are *context*: a prediction for an
order nobody has planned yet leaves them missing, and the model averages over them (see
:mod:`detection.mttr.model`).  Training rows also carry ``duration_h`` (work start to asset
restored, hours).

>>> f = frame([{"model_id": "P", "mode": "seal_leak", "skill_level": 3, "parts_on_hand": True,
...             "start": "2026-03-02T14:30:00Z"}])
>>> [f.loc[0, c] for c in ("kind", "skill_level", "parts_on_hand", "hour", "dow")] == ["corrective", 3, 1, 14, 0]
True
>>> frame([{"model_id": "P", "mode": None}])
Traceback (most recent call last):
...
ValueError: MTTR rows need a model_id and a mode; missing in row 0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

KINDS = ("corrective", "predictive", "preventive")
SKILL_LEVELS = (1, 2, 3)
CATEGORICAL = ("model_id", "mode", "kind", "region")
TARGET_ENCODED = ("site_id",)
CONTEXT = ("skill_level", "parts_on_hand", "hour", "dow")
NUMERIC = ("log_nominal",) + CONTEXT
COLUMNS = CATEGORICAL + TARGET_ENCODED + NUMERIC


def _rows(X) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X.reset_index(drop=True)
    if isinstance(X, Mapping):
        return pd.DataFrame([dict(X)])
    if isinstance(X, Iterable) and not isinstance(X, (str, bytes)):
        rows = list(X)
        if not all(isinstance(r, Mapping) for r in rows):
            raise ValueError("MTTR rows must be mappings (dicts) or a pandas DataFrame")
        return pd.DataFrame(rows)
    raise ValueError(f"MTTR rows must be a DataFrame, a dict or a list of dicts, not {type(X).__name__}")


def _text(col: pd.Series, name: str, required: bool) -> pd.Series:
    missing = col.isna() | (col.astype(str).str.len() == 0)
    if required and missing.any():
        raise ValueError(f"MTTR rows need a model_id and a mode; missing in row {int(np.argmax(missing.to_numpy()))}")
    return col.where(~missing, "").astype(str)


def _bool(col: pd.Series) -> pd.Series:
    def one(v):
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return np.nan
        if isinstance(v, (bool, np.bool_)):
            return float(v)
        if isinstance(v, (int, np.integer)) and v in (0, 1):
            return float(v)
        if isinstance(v, str) and v.lower() in ("true", "false"):
            return float(v.lower() == "true")
        raise ValueError(f"parts_on_hand must be true, false or missing, got {v!r}")
    return col.map(one).astype(float)


def frame(X, *, nominal: Mapping[tuple[str, str], float] | None = None,
          with_target: bool = False) -> pd.DataFrame:
    """Checked feature frame (columns :data:`COLUMNS`, plus ``duration_h`` when
    ``with_target``) from a DataFrame, a dict or a list of dicts.  ``nominal``: the service
    manual's MTTR per (model_id, mode), giving ``log_nominal`` (missing when unknown)."""
    raw = _rows(X)
    n = len(raw)
    get = lambda c: raw[c] if c in raw else pd.Series([None] * n, dtype=object)  # noqa: E731
    if n and ("model_id" not in raw or "mode" not in raw):
        raise ValueError(f"MTTR rows need columns model_id and mode; got {sorted(raw.columns)}")
    out = pd.DataFrame(index=range(n))
    out["model_id"] = _text(get("model_id"), "model_id", True)
    out["mode"] = _text(get("mode"), "mode", True)
    kind = _text(get("kind"), "kind", False).replace("", "corrective")
    bad = ~kind.isin(KINDS)
    if bad.any():
        raise ValueError(f"kind must be one of {KINDS}, got {kind[bad].iloc[0]!r}")
    out["kind"] = kind
    out["region"] = _text(get("region"), "region", False)
    out["site_id"] = _text(get("site_id"), "site_id", False)
    skill = pd.to_numeric(get("skill_level"), errors="coerce")
    bad = get("skill_level").notna() & ~skill.isin(SKILL_LEVELS)
    if bad.any():
        raise ValueError(f"skill_level must be one of {SKILL_LEVELS} or missing, "
                         f"got {get('skill_level')[bad].iloc[0]!r}")
    out["skill_level"] = skill.astype(float)
    out["parts_on_hand"] = _bool(get("parts_on_hand"))
    if "start" in raw:
        try:
            start = pd.to_datetime(raw["start"], utc=True, format="mixed")
        except (ValueError, TypeError) as exc:
            raise ValueError(f"start must be a time (ISO 8601 or datetime): {exc}") from None
        out["hour"] = start.dt.hour.astype(float)
        out["dow"] = start.dt.day_of_week.astype(float)
    else:
        for c, hi in (("hour", 23), ("dow", 6)):
            v = pd.to_numeric(get(c), errors="coerce").astype(float)
            if (get(c).notna() & ~v.between(0, hi)).any():
                raise ValueError(f"{c} must be 0..{hi} or missing")
            out[c] = v
    nominal = nominal or {}
    nom = np.array([nominal.get((m, f), np.nan) for m, f in zip(out["model_id"], out["mode"])], float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["log_nominal"] = np.where(nom > 0, np.log(np.where(nom > 0, nom, 1.0)), np.nan)
    out = out[list(COLUMNS)]
    if with_target:
        if not n:
            d = pd.Series([], dtype=float)
        elif "duration_h" in raw:
            d = pd.to_numeric(raw["duration_h"], errors="coerce").astype(float)
        elif "started_at" in raw and "finished_at" in raw:
            d = ((pd.to_datetime(raw["finished_at"], utc=True, format="mixed")
                  - pd.to_datetime(raw["started_at"], utc=True, format="mixed")).dt.total_seconds() / 3600.0)
        else:
            raise ValueError("repairs need duration_h (or started_at and finished_at)")
        bad = ~np.isfinite(d.to_numpy()) | (d.to_numpy() < 0)
        if bad.any():
            raise ValueError(f"repair durations must be finite and >= 0 hours; row {int(np.argmax(bad))} "
                             f"has {d.iloc[int(np.argmax(bad))]!r}")
        out["duration_h"] = d.to_numpy()
    return out


def group_keys(f: pd.DataFrame) -> np.ndarray:
    """The Mondrian category of each row: ``model_id|mode``."""
    return (f["model_id"] + "|" + f["mode"]).to_numpy(dtype=object)
