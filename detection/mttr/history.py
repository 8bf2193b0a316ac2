"""Completed repairs and the service manual's nominal MTTR, read from the database.

Repairs of failure modes, corrective and predictive; preventive services (a whole-machine
service on a calendar, ``mode`` 'preventive', no failure mode) are not repairs and not fitted.

Censoring: a repair in progress has no row in ``repairs`` yet.  Fitting every completed repair
would under-represent long repairs among recent starts (a long repair started last week is
still open, a short one is done), so :func:`load_repairs` keeps only repairs that started at
least ``window_h`` before ``as_of``; by default ``window_h`` is the 99th percentile of recorded
repair durations, so nearly every repair started before the cut has finished.  Assets still
down since before the cut (``downtime`` without an end) are counted as ``censored`` and not
fitted: an estimate that ignores them is biased low by at most those few long repairs.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import psycopg

REPAIRS_SQL = """
SELECT a.model_id, r.mode, r.kind, a.site_id,
       coalesce(nullif(r.detail->>'region', ''), s.region) AS region,
       CASE WHEN r.detail->>'skill_level' IN ('1', '2', '3') THEN (r.detail->>'skill_level')::int END
           AS skill_level,
       CASE r.detail->>'parts_on_hand' WHEN 'true' THEN true WHEN 'false' THEN false END AS parts_on_hand,
       r.started_at AS start,
       extract(epoch FROM r.finished_at - r.started_at)::float8 / 3600.0 AS duration_h
FROM repairs r
JOIN assets a ON a.asset_id = r.asset_id
LEFT JOIN sites s ON s.site_id = a.site_id
WHERE r.kind <> 'preventive' AND r.mode <> 'preventive' AND r.started_at >= %(since)s AND r.started_at < %(cut)s
  AND r.finished_at <= %(as_of)s
ORDER BY r.started_at, r.id
"""


def nominal(conn: psycopg.Connection) -> dict[tuple[str, str], float]:
    """The manual's MTTR in hours per (model_id, mode) (``failure_modes.mttr_h``)."""
    return {(m, f): float(h) for m, f, h in
            conn.execute("SELECT model_id, mode, mttr_h FROM failure_modes WHERE mttr_h > 0")}


def select_repairs(conn: psycopg.Connection, since: datetime | None, before: datetime,
                   finished_by: datetime) -> pd.DataFrame:
    """Repairs started in [since, before) and finished by ``finished_by``, one row each with
    the features of :mod:`detection.mttr.features` (``start``) and ``duration_h``."""
    with conn.cursor() as cur:
        cur.execute(REPAIRS_SQL, {"since": since or datetime.min.replace(tzinfo=before.tzinfo),
                                  "cut": before, "as_of": finished_by})
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def load_repairs(conn: psycopg.Connection, *, as_of: datetime | None = None,
                 window_h: float | None = None) -> tuple[pd.DataFrame, dict]:
    """Completed repairs fit to learn from at ``as_of`` (see the module docstring) and what
    was cut: ``{"as_of", "window_h", "cut", "censored", "recent_excluded"}``.  ``as_of``
    defaults to the latest recorded repair finish (the platform's clock, also in a simulated
    past); with an earlier ``as_of`` nothing recorded after it is used."""
    if as_of is None:
        as_of = conn.execute("SELECT max(finished_at) FROM repairs").fetchone()[0]
    if as_of is None:
        return pd.DataFrame(columns=["model_id", "mode", "duration_h"]), {
            "as_of": None, "window_h": window_h, "cut": None, "censored": 0, "recent_excluded": 0}
    if window_h is None:
        window_h = conn.execute(
            "SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at)) "
            "/ 3600.0 FROM repairs WHERE finished_at <= %s", (as_of,)).fetchone()[0] or 0.0
    cut = as_of - timedelta(hours=float(window_h))
    df = select_repairs(conn, None, cut, as_of)
    censored = conn.execute(
        "SELECT count(*) FROM downtime WHERE started_at < %(cut)s AND (ended_at IS NULL OR ended_at > %(as_of)s)",
        {"cut": cut, "as_of": as_of}).fetchone()[0]
    recent = conn.execute("SELECT count(*) FROM repairs WHERE started_at >= %s AND finished_at <= %s",
                          (cut, as_of)).fetchone()[0]
    return df, {"as_of": as_of.isoformat(), "window_h": round(float(window_h), 3), "cut": cut.isoformat(),
                "censored": int(censored), "recent_excluded": int(recent)}
