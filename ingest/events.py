"""State events -> ``device_events``, and from them ``downtime``, ``repairs`` and the completion
of live service orders. Runs inside the ingest batch transaction; every step is idempotent, so a
redelivered event changes nothing.

- ``failure`` opens a downtime of the asset (unless one is open), with the failure mode;
- ``repair_started`` is recorded; ``repair_finished`` writes the repair (started at the latest
  ``repair_started`` of the same mode, else at the open downtime's start, else at the finish),
  closes the asset's open downtime, and completes a live service order of the asset and mode
  through :func:`orders.state.complete_repaired` (the one place repairs close orders), as
  actor ``device:<device_id>`` at the event's time. The repair's first-time fix is the device's
  ``detail.first_time_fix`` when it reports one (a technician's answer entered on the device),
  else unknown (NULL): a device does not know whether the fault will come back.
"""

from __future__ import annotations

import psycopg
from psycopg.types.json import Jsonb

from ingest.parse import StateEvent
from orders.state import complete_repaired


def _detail(ev: StateEvent) -> dict:
    d = dict(ev.detail)
    if ev.mode is not None:
        d["mode"] = ev.mode
    if ev.code is not None:
        d["code"] = ev.code
    return d


def apply_events(cur: psycopg.Cursor, events: list[tuple[StateEvent, str]]) -> int:
    """Store ``[(event, asset_id), ...]`` in order; returns the number newly stored."""
    stored = 0
    for ev, asset_id in events:
        cur.execute(
            "INSERT INTO device_events (time, device_id, event, detail) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING RETURNING 1",
            (ev.time, ev.device_id, ev.event, Jsonb(_detail(ev))))
        if cur.fetchone() is None:
            continue                                     # seen before: already applied
        stored += 1
        if ev.event == "failure":
            _open_downtime(cur, asset_id, ev)
        elif ev.event == "repair_finished":
            _finish_repair(cur, asset_id, ev)
    return stored


def _open_downtime(cur, asset_id: str, ev: StateEvent) -> None:
    cur.execute(
        "INSERT INTO downtime (asset_id, mode, started_at) "
        "SELECT %(a)s, %(m)s, %(t)s WHERE NOT EXISTS ("
        "  SELECT 1 FROM downtime WHERE asset_id = %(a)s AND ended_at IS NULL AND started_at <= %(t)s) "
        "ON CONFLICT (asset_id, started_at) DO NOTHING",
        {"a": asset_id, "m": ev.mode, "t": ev.time})


REPAIR_KINDS = ("corrective", "predictive", "preventive")   # as the device reports it; default corrective


def _finish_repair(cur, asset_id: str, ev: StateEvent) -> None:
    t = ev.time
    cur.execute(
        "SELECT max(time) FROM device_events WHERE device_id = %s AND event = 'repair_started' "
        "AND detail->>'mode' = %s AND time <= %s",
        (ev.device_id, ev.mode, t))
    started = cur.fetchone()[0]
    cur.execute(
        "SELECT started_at FROM downtime WHERE asset_id = %s AND ended_at IS NULL AND started_at <= %s "
        "ORDER BY started_at DESC LIMIT 1", (asset_id, t))
    row = cur.fetchone()
    down_since = row[0] if row else None
    if started is None:
        started = down_since or t
    cur.execute(
        "UPDATE downtime SET ended_at = %s WHERE asset_id = %s AND ended_at IS NULL AND started_at <= %s",
        (t, asset_id, t))
    kind = ev.detail.get("kind")
    cur.execute(
        "INSERT INTO repairs (asset_id, mode, kind, started_at, finished_at, first_time_fix, detail) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (asset_id, started_at) DO NOTHING RETURNING id",
        (asset_id, ev.mode, kind if kind in REPAIR_KINDS else "corrective", started, t,
         ftf if isinstance(ftf := ev.detail.get("first_time_fix"), bool) else None,
         Jsonb({"device_id": ev.device_id, "downtime_started_at": down_since.isoformat()
                if down_since else None, **_detail(ev)})))
    row = cur.fetchone()
    if row is not None and ev.mode is not None:
        complete_repaired(cur.connection, row[0], asset_id, ev.mode, t, actor=f"device:{ev.device_id}")
