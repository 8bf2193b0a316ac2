"""The fitted repair-time model in the database (table ``mttr_models``, newest row in force).

``fit_from_db`` learns from the platform's completed repairs (:mod:`detection.mttr.history`);
``save`` / ``load_latest`` store and read it; ``refresh`` is the schedule: the detection
service calls it on every catalog refresh and it refits only when the stored model is older
than ``max_age_s`` (an hour by default), and ``prognos train`` refits every time.
"""

from __future__ import annotations

import io
import logging
import time
from datetime import datetime

import joblib
import psycopg
from psycopg.types.json import Jsonb

from detection.mttr.history import load_repairs, nominal
from detection.mttr.model import MttrModel
from prognos.logs import event

log = logging.getLogger("prognos.detection.mttr")
KEEP = 5            # stored versions kept
_loaded: dict[tuple, MttrModel] = {}    # (host, port, database, id) -> model


def fit_from_db(conn: psycopg.Connection, *, as_of: datetime | None = None, window_h: float | None = None,
                **params) -> MttrModel:
    t0 = time.perf_counter()
    repairs, cut = load_repairs(conn, as_of=as_of, window_h=window_h)
    model = MttrModel(**params).fit(repairs, nominal(conn), censored=cut["censored"])
    model.summary_.update(cut)
    event(log, "mttr_fitted", repairs=model.summary_["repairs"], censored=cut["censored"],
          recent_excluded=cut["recent_excluded"], as_of=cut["as_of"],
          groups=len(model.summary_["groups"]), seconds=round(time.perf_counter() - t0, 3))
    return model


def save(conn: psycopg.Connection, model: MttrModel) -> int:
    buf = io.BytesIO()
    joblib.dump(model, buf)
    s = model.summary_
    row = conn.execute(
        "INSERT INTO mttr_models (as_of, repairs, summary, model) VALUES (%s, %s, %s, %s) RETURNING id",
        (s.get("as_of"), s["repairs"], Jsonb(s), buf.getvalue())).fetchone()
    conn.execute("DELETE FROM mttr_models WHERE id <= %s", (row[0] - KEEP,))
    return int(row[0])


def latest_id(conn: psycopg.Connection) -> tuple[int, datetime] | None:
    row = conn.execute("SELECT id, fitted_at FROM mttr_models ORDER BY id DESC LIMIT 1").fetchone()
    return (int(row[0]), row[1]) if row else None


def load(conn: psycopg.Connection, model_id: int) -> MttrModel:
    """The stored model ``model_id`` (kept in memory once loaded: rows never change), with the
    manual's figures of product models registered since it was fitted."""
    key = (conn.info.host, conn.info.port, conn.info.dbname, model_id)
    if key not in _loaded:
        row = conn.execute("SELECT model FROM mttr_models WHERE id = %s", (model_id,)).fetchone()
        if row is None:
            raise LookupError(f"no stored MTTR model {model_id}")
        while len(_loaded) >= 2:
            _loaded.pop(next(iter(_loaded)))
        _loaded[key] = joblib.load(io.BytesIO(bytes(row[0])))
    _loaded[key].refresh_nominal(nominal(conn))
    return _loaded[key]


def refresh(conn: psycopg.Connection, *, max_age_s: float = 3600.0, as_of: datetime | None = None) -> int:
    """Refit and store when the newest stored model is older than ``max_age_s`` (wall clock)
    or there is none; returns the id in force."""
    cur = latest_id(conn)
    if cur is not None:
        age = conn.execute("SELECT extract(epoch FROM now() - %s::timestamptz)", (cur[1],)).fetchone()[0]
        if float(age) < max_age_s:
            return cur[0]
    return save(conn, fit_from_db(conn, as_of=as_of))
