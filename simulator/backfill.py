"""Backfill: months of fleet history straight into TimescaleDB.

Telemetry goes in with binary COPY (``set_types``) into ``telemetry``, one transaction per
chunk of simulated time; the chunk's ``downtime`` and ``repairs`` rows and the device state
events are written as the platform would have recorded them; the minutes written are marked
for the rollups (``rollup_dirty``, worker ``backfill``).  With ``outbox=True`` each COPY batch
also gets its ``ingest_batches`` row (the keys it stored), so the online detection service
replays the period exactly as if ingest had written it.
"""

from __future__ import annotations

import logging
import time as _time
from datetime import datetime, timedelta, timezone

import numpy as np
import psycopg
from psycopg.types.json import Jsonb
from tqdm import tqdm

from ingest.copy_binary import SIGNATURE, TRAILER
from prognos.config import Settings
from prognos.logs import event
from simulator.copy_binary import encode_rows
from simulator.fleet import Fleet
from simulator.ground_truth import parse_time
from simulator.runner import SENSOR_OPEN_CODE, reported
from simulator.technicians import OBSERVED

log = logging.getLogger("prognos.simulator.backfill")

_COPY = "COPY telemetry (time, device_id, vals) FROM STDIN (FORMAT BINARY)"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
STATE_EVENT = {"failure": "failure", "repair_start": "repair_started",
               "repair_end": "repair_finished"}


def block_rows(times: np.ndarray, device_ids: list[str], values: np.ndarray):
    """Yield ``(time, device_id, vals)`` rows of one model's block; NaN -> NULL element.

    >>> t = np.array(["2026-01-01T00:00:00"], "datetime64[ns]")
    >>> v = np.array([[[1.5, np.nan]]], np.float32)
    >>> [r[1:] for r in block_rows(t, ["d1"], v)]
    [('d1', [1.5, None])]
    """
    us = times.astype("datetime64[us]").astype(np.int64)
    stamps = [_EPOCH + timedelta(microseconds=int(u)) for u in us]
    nan = np.isnan(values)
    has_nan = nan.any(axis=2)
    lists = values.tolist()
    for j, t in enumerate(stamps):
        row_l, row_nan = lists[j], has_nan[j]
        for i, d in enumerate(device_ids):
            v = row_l[i]
            if row_nan[i]:
                v = [None if x != x else x for x in v]
            yield t, d, v


def _check_empty(conn, fleet: Fleet, start: datetime, end: datetime) -> None:
    row = conn.execute(
        "SELECT device_id, time FROM telemetry WHERE device_id = ANY(%s) AND time >= %s "
        "AND time < %s LIMIT 1", (fleet.device_ids(), start, end)).fetchone()
    if row:
        raise RuntimeError(
            f"telemetry of this fleet already exists in [{start.isoformat()}, {end.isoformat()}) "
            f"(e.g. {row[0]} at {row[1].isoformat()}); backfill another period or another fleet")


def _record_events(cur, fleet: Fleet, events: list[dict]) -> None:
    """downtime, repairs and device_events rows for ground-truth events of one chunk."""
    for e in events:
        ev, t = e["event"], parse_time(e["t"])
        mode = e.get("mode") or ("preventive" if e.get("kind") == "preventive" else None)
        a = e["asset_id"]
        if ev == "downtime_start":
            cur.execute("INSERT INTO downtime (asset_id, mode, started_at, planned) "
                        "VALUES (%s, %s, %s, %s) ON CONFLICT (asset_id, started_at) DO NOTHING",
                        (a, mode, t, bool(e.get("planned"))))
        elif ev == "downtime_end":
            cur.execute("UPDATE downtime SET ended_at = %s WHERE asset_id = %s AND ended_at IS NULL "
                        "AND started_at <= %s", (t, a, t))
        elif ev == "repair_end":
            started = t - timedelta(hours=float(e.get("duration_h", 0.0)))
            # what the technician records; the factors drawn stay in the ground truth
            detail = {k: e[k] for k in ("duration_h", "parts_delay_h", *OBSERVED, "as_found") if k in e}
            cur.execute(
                "INSERT INTO repairs (asset_id, mode, kind, started_at, finished_at, "
                "detail) VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (asset_id, started_at) DO NOTHING",
                (a, mode, e.get("kind", "corrective"), started, t, Jsonb(detail)))
        if ev in STATE_EVENT or (ev == "sensor_fault" and reported(e)):
            name = STATE_EVENT.get(ev, "fault")
            detail = {"mode": mode} if mode else {}
            if ev == "sensor_fault":
                detail.update(code=SENSOR_OPEN_CODE, sensor=e["sensor"])
            elif e.get("kind"):
                detail["kind"] = e["kind"]
            cur.execute("INSERT INTO device_events (time, device_id, event, detail) "
                        "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        (t, e["device_id"], name, Jsonb(detail)))


def _record_device_faults(cur, fleet: Fleet) -> None:
    for f in fleet.last_device_faults:
        cur.execute("INSERT INTO device_events (time, device_id, event, detail) "
                    "VALUES (%s, %s, 'fault', %s) ON CONFLICT DO NOTHING",
                    (parse_time(f["t"]), f["device_id"], Jsonb({"code": f["code"], **f["detail"]})))


def _record_transitions(cur, fleet: Fleet, block: dict) -> None:
    """start / stop device events of the machines that started or stopped in the chunk."""
    times, devs, kinds = [], [], []
    for mid, trans in fleet.last_transitions.items():
        t, ids, _ = block[mid]
        us = t.astype("datetime64[us]").astype(np.int64)
        for j, i, running in trans:
            times.append(_EPOCH + timedelta(microseconds=int(us[j])))
            devs.append(ids[i])
            kinds.append("start" if running else "stop")
    if times:
        cur.execute("INSERT INTO device_events (time, device_id, event) "
                    "SELECT * FROM unnest(%s::timestamptz[], %s::text[], %s::text[]) "
                    "ON CONFLICT DO NOTHING", (times, devs, kinds))


def backfill(settings: Settings, fleet: Fleet, start: datetime | None = None,
             end: datetime | None = None, step_s: float = 60.0, outbox: bool = False,
             progress: bool = True, chunk_s: float = 6 * 3600.0, batch_rows: int = 50_000,
             rollups: bool = True, fast: bool = True) -> int:
    """Simulate ``[start, end)`` every ``step_s`` seconds and write it; returns rows written.

    ``fast``: COPY rows encoded in bulk by :mod:`simulator.copy_binary` (default); False: rows
    through psycopg's ``set_types`` + ``write_row`` (the reference, several times slower).
    ``start`` defaults to the fleet clock (a later start fast-forwards the physics without
    writing); ``end`` must not be in the future (ingest would refuse those readings).
    """
    start = start or fleet.clock
    end = end or datetime.now(timezone.utc)
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if end <= start:
        raise ValueError(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
    if end > datetime.now(timezone.utc) + timedelta(minutes=5):
        raise ValueError("backfill cannot write the future (end is after now + 5 min)")
    if start < fleet.clock - timedelta(milliseconds=1):
        raise ValueError(f"the fleet is already at {fleet.clock.isoformat()}; start must not be "
                         "earlier")
    if step_s <= 0:
        raise ValueError("step_s must be > 0")
    oldest = datetime.now(timezone.utc) - timedelta(days=settings.retention_days)
    if start < oldest:
        raise ValueError(f"start {start.isoformat()} is older than the retention "
                         f"({settings.retention_days} days): the platform would drop it")
    while fleet.clock < start - timedelta(milliseconds=1):   # fast-forward, nothing written
        gap = (start - fleet.clock).total_seconds()
        n = max(1, min(int(gap // 600), 144))
        fleet.step(None, n, min(600.0, gap / n))
    total_steps = int((end - start).total_seconds() // step_s)
    per_chunk = max(1, int(chunk_s // step_s))
    rows_total, t_wall = 0, _time.perf_counter()
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        _check_empty(conn, fleet, start, end)
        bar = tqdm(total=total_steps * len(fleet.assets), unit="rows", unit_scale=True,
                   disable=not progress, desc="backfill")
        done = 0
        while done < total_steps:
            k = min(per_chunk, total_steps - done)
            block = fleet.step(None, k, step_s)
            with conn.transaction():
                with conn.cursor() as cur:
                    n = _copy_block(cur, block, outbox, batch_rows, fast)
                    _record_events(cur, fleet, fleet.last_events)
                    _record_transitions(cur, fleet, block)
                    _record_device_faults(cur, fleet)
                    if rollups:
                        times = next(iter(block.values()))[0]
                        minutes = np.unique(times.astype("datetime64[m]")).astype("datetime64[us]")
                        cur.execute(
                            "INSERT INTO rollup_dirty (bucket, worker) SELECT unnest(%s::timestamptz[]),"
                            " 'backfill' ON CONFLICT DO NOTHING",
                            ([_EPOCH + timedelta(microseconds=int(u))
                              for u in minutes.astype(np.int64)],))
            rows_total += n
            done += k
            bar.update(n)
        bar.close()
        if rollups:
            _refresh_rollups(conn)
    el = _time.perf_counter() - t_wall
    event(log, "backfill_done", rows=rows_total, seconds=round(el, 2),
          rows_per_s=round(rows_total / el) if el else None, start=start.isoformat(),
          end=fleet.clock.isoformat(), outbox=outbox)
    return rows_total


def _copy_block(cur, block: dict, outbox: bool, batch_rows: int, fast: bool = True) -> int:
    n = 0
    for times, device_ids, values in block.values():
        per = max(1, batch_rows // max(1, len(device_ids)))
        for j0 in range(0, len(times), per):
            t, v = times[j0:j0 + per], values[j0:j0 + per]
            rows = 0
            with cur.copy(_COPY) as copy:
                if fast:   # the whole batch encoded at once (simulator.copy_binary)
                    us = t.astype("datetime64[us]").astype(np.int64)
                    copy.write(SIGNATURE + encode_rows(us, device_ids, v) + TRAILER)
                    rows = v.shape[0] * v.shape[1]
                else:      # psycopg's own row encoder, one row at a time
                    copy.set_types(["timestamptz", "text", "float4[]"])
                    for row in block_rows(t, device_ids, v):
                        copy.write_row(row)
                        rows += 1
            if outbox:
                us = t.astype("datetime64[us]").astype(np.int64)
                stamps = [_EPOCH + timedelta(microseconds=int(u)) for u in us]
                # every (device, time) of the batch was stored: the keys are the cross product,
                # built by the server from the two short lists
                cur.execute(
                    "INSERT INTO ingest_batches (device_ids, times, min_time, max_time) "
                    "SELECT array_agg(d ORDER BY t, d), array_agg(t ORDER BY t, d), min(t), max(t) "
                    "FROM unnest(%s::text[]) AS d CROSS JOIN unnest(%s::timestamptz[]) AS t",
                    (list(device_ids), stamps))
            n += rows
    return n


def _refresh_rollups(conn) -> None:
    try:
        from ingest.rollup import refresh_rollups
    except ImportError:                                   # ingest not installed: marks stay
        return
    refresh_rollups(conn, settle_s=0.0)
