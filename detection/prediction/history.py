"""The platform's own history of one product model, read from TimescaleDB for training:
hourly sensor means per asset (``time_bucket`` in SQL, ordered by ``sensors.position``),
failures (unplanned ``downtime`` with a mode; ``started_at`` is the failure time), repairs, and
the periods an asset was down or under repair (their readings are not a running machine).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np
import psycopg
from psycopg import sql

HOUR = 3600.0


@dataclass
class AssetHistory:
    """One asset's bucketed telemetry and events. A row is one bucket of ``step_h`` hours (1 for
    the hourly histories the service reads; 24 for a product that reports once a day)."""

    asset_id: str
    start_h: float                   # epoch hours of the first row (a bucket boundary)
    values: np.ndarray               # float64[n_rows, n_sensors] bucket means, NaN = no data
    failures: list[tuple[float, str]] = field(default_factory=list)   # (epoch hours, mode)
    repairs: list[float] = field(default_factory=list)                # repair start, epoch hours
    down: list[tuple[float, float]] = field(default_factory=list)     # [from, to) epoch hours
    step_h: float = 1.0              # hours per row
    variant: str | None = None       # the asset's variant of its product model (e.g. a drive model), if known

    def __post_init__(self):
        if not self.step_h > 0:
            raise ValueError(f"step_h must be > 0, got {self.step_h}")

    @property
    def end_h(self) -> float:
        return self.start_h + self.values.shape[0] * self.step_h

    @property
    def row_start_h(self) -> np.ndarray:
        """Epoch hours at the start of every row."""
        return self.start_h + self.step_h * np.arange(self.values.shape[0])


def bucket_readings(asset_id: str, time_s, vals, step_h: float = 1.0, **events) -> AssetHistory:
    """An asset's readings as ingest stores them (``time`` in epoch seconds, one ``vals`` row of
    sensor values per reading, NaN = missing) -> its :class:`AssetHistory`: the mean of every
    sensor per ``step_h``-hour bucket, NaN rows for buckets without readings. The in-memory
    counterpart of :func:`load_history`'s ``time_bucket`` query (for backtests over files);
    ``events`` are passed on (``failures``, ``repairs``, ``down``).

    >>> h = bucket_readings("d1", [0.0, 3600.0, 3 * 86400.0], [[1.0, np.nan], [3.0, 5.0], [7.0, 1.0]], 24)
    >>> h.start_h, h.values.tolist()[0], h.values.shape, h.end_h
    (0.0, [2.0, 5.0], (4, 2), 96.0)
    """
    t = np.asarray(time_s, dtype=np.float64)
    v = np.asarray(vals, dtype=np.float64)
    if t.ndim != 1 or v.ndim != 2 or len(t) != len(v) or len(t) == 0:
        raise ValueError(f"need one vals row per time: times {t.shape}, vals {v.shape} (and at least one)")
    if not np.isfinite(t).all():
        raise ValueError(f"{asset_id}: reading times must be finite")
    b = np.floor(t / HOUR / step_h).astype(np.int64)
    first = int(b.min())
    n = int(b.max()) - first + 1
    ok = np.isfinite(v)
    sums = np.zeros((n, v.shape[1]))
    counts = np.zeros((n, v.shape[1]))
    np.add.at(sums, b - first, np.where(ok, v, 0.0))
    np.add.at(counts, b - first, ok)
    with np.errstate(invalid="ignore"):
        values = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return AssetHistory(asset_id, first * float(step_h), values, step_h=float(step_h), **events)


@dataclass
class ModelHistory:
    model_id: str
    sensors: list[str]
    predictable: dict[str, bool]     # failure mode -> has a precursor
    assets: list[AssetHistory]
    moved: set[str] = field(default_factory=set)   # sensors some failure mode moves

    @property
    def condition(self) -> list[int]:
        """Sensors no failure mode moves (load, speed, ambient): the operating regime.
        Empty when the failure modes name no sensors (nothing to tell them apart)."""
        if not self.moved:
            return []
        return [i for i, name in enumerate(self.sensors) if name not in self.moved]

    @property
    def time_range(self) -> tuple[datetime | None, datetime | None]:
        if not self.assets:
            return None, None
        lo = min(a.start_h for a in self.assets) * HOUR
        hi = max(a.end_h for a in self.assets) * HOUR
        return datetime.fromtimestamp(lo, tz=timezone.utc), datetime.fromtimestamp(hi, tz=timezone.utc)

    def is_predictable(self, mode: str) -> bool:
        return self.predictable.get(mode, True)


def product_models(conn: psycopg.Connection) -> list[str]:
    """Product models that have at least one asset with a device."""
    rows = conn.execute(
        "SELECT DISTINCT a.model_id FROM assets a JOIN devices d USING (asset_id) ORDER BY 1").fetchall()
    return [r[0] for r in rows]


def _hours(ts: datetime) -> float:
    return ts.timestamp() / HOUR


SOURCES = ("telemetry", "rollup")


def load_history(conn: psycopg.Connection, model_id: str, since: datetime | None = None,
                 until: datetime | None = None, progress: Iterable | None = None,
                 source: str = "telemetry") -> ModelHistory:
    """Everything training needs about ``model_id``; ``progress`` wraps the per-asset loop
    (e.g. ``functools.partial(tqdm, desc=...)``).

    ``source="telemetry"`` averages the raw readings per hour in SQL (authoritative);
    ``"rollup"`` reads ingest's hourly rollup ``telemetry_1h`` (much cheaper over long
    histories, as fresh as the rollup job)."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    sensors = [r[0] for r in conn.execute(
        "SELECT name FROM sensors WHERE model_id = %s ORDER BY position", (model_id,))]
    if not sensors:
        raise LookupError(f"product model {model_id!r} has no sensors (unknown model?)")
    modes = conn.execute(
        "SELECT mode, predictable, sensors FROM failure_modes WHERE model_id = %s", (model_id,)).fetchall()
    predictable = {mode: pred for mode, pred, _ in modes}
    moved = {name for _, _, names in modes for name in names}
    assets = conn.execute(
        "SELECT a.asset_id, d.device_id FROM assets a JOIN devices d USING (asset_id) "
        "WHERE a.model_id = %s ORDER BY a.asset_id", (model_id,)).fetchall()
    query = _hourly_query(len(sensors), source, since is not None, until is not None)

    events = _events(conn, [a for a, _ in assets])
    loop = progress(assets) if progress else assets
    out = []
    for asset_id, device_id in loop:
        rows = conn.execute(query, {"device": device_id, "since": since, "until": until}).fetchall()
        if not rows:
            continue
        first, values = _dense(rows, len(sensors))
        ev = events.get(asset_id, {})
        out.append(AssetHistory(asset_id, first, values, ev.get("failures", []),
                                ev.get("repairs", []), ev.get("down", [])))
    return ModelHistory(model_id, sensors, predictable, out, moved)


#: per source: hour of a row, the mean of sensor i (a format with {}), table, grouping
_HOURLY = {
    "telemetry": ("time_bucket('1 hour', time)", "avg(vals[{}])::float8", "telemetry", "time", " GROUP BY b"),
    "rollup": ("bucket", "avg_vals[{}]::float8", "telemetry_1h", "bucket", ""),
}


def _hourly_query(n_sensors: int, source: str, since: bool, until: bool, many: bool = False) -> sql.Composed:
    """Hourly means per sensor of one device (``%(device)s``), between ``%(since)s``
    (inclusive) and ``%(until)s`` (exclusive) when given: rows ``(epoch seconds, mean...)``.
    ``telemetry`` averages the raw readings, ``rollup`` reads ingest's ``telemetry_1h``.
    ``many``: of the devices ``%(devices)s``, rows ``(device_id, epoch seconds, mean...)``."""
    hour, mean, table, col, group = _HOURLY[source]
    bounds = (f" AND {col} >= %(since)s" if since else "") + (f" AND {col} < %(until)s" if until else "")
    means = sql.SQL(", ").join(sql.SQL(mean.format(i + 1)) for i in range(n_sensors))
    if many:
        group = group.replace("GROUP BY", "GROUP BY device_id,")
        return sql.SQL(
            f"SELECT device_id, extract(epoch FROM {hour})::float8 AS b, {{means}} "
            f"FROM {table} WHERE device_id = ANY(%(devices)s){bounds}{group} ORDER BY device_id, b"
        ).format(means=means)
    return sql.SQL(
        f"SELECT extract(epoch FROM {hour})::float8 AS b, {{means}} "
        f"FROM {table} WHERE device_id = %(device)s{bounds}{group} ORDER BY b"
    ).format(means=means)


def _dense(rows, n_sensors: int, first_h: float | None = None, n_hours: int | None = None):
    """Hourly rows -> (epoch hour of row 0, float64[n_hours, n_sensors]) with NaN rows for the
    hours without data."""
    arr = np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=np.float64)
    hours = np.round(arr[:, 0] / HOUR).astype(np.int64)
    first = int(hours[0]) if first_h is None else int(first_h)
    n = int(hours[-1] - first) + 1 if n_hours is None else n_hours
    values = np.full((n, n_sensors), np.nan)
    ok = (hours >= first) & (hours < first + n)
    values[hours[ok] - first] = arr[ok, 1:]
    return float(first), values


def recent_window(conn: psycopg.Connection, device_id: str, at: datetime, window_h: int,
                  n_sensors: int, source: str = "telemetry") -> np.ndarray:
    """What ``AssetPredictor.predict`` expects, computed exactly as in training: hourly means
    of the ``window_h`` hours up to the hour holding ``at`` (readings at or before ``at``),
    oldest first, one row per hour (NaN rows for hours without data), ``float64[window_h,
    n_sensors]``."""
    found = recent_windows(conn, [device_id], at, window_h, n_sensors, source)
    return found.get(device_id, np.full((int(window_h), n_sensors), np.nan))


def recent_windows(conn: psycopg.Connection, device_ids: list[str], at: datetime, window_h: int,
                   n_sensors: int, source: str = "telemetry") -> dict[str, np.ndarray]:
    """:func:`recent_window` of many devices in one query: ``{device_id: window}`` for the
    devices with readings in the window (the others are missing)."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    last_h = int(at.timestamp() // HOUR)
    first_h = last_h - int(window_h) + 1
    since = datetime.fromtimestamp(first_h * HOUR, tz=timezone.utc)
    rows = conn.execute(_hourly_query(n_sensors, source, True, True, many=True),
                        {"devices": list(device_ids), "since": since,
                         "until": at + timedelta(microseconds=1)}).fetchall()
    by_device: dict[str, list] = {}
    for r in rows:
        by_device.setdefault(r[0], []).append(r[1:])
    return {d: _dense(rs, n_sensors, first_h, int(window_h))[1] for d, rs in by_device.items()}


def _events(conn: psycopg.Connection, asset_ids: list[str]) -> dict[str, dict[str, list]]:
    ev: dict[str, dict[str, list]] = {}
    for asset_id, mode, start, end, planned in conn.execute(
            "SELECT asset_id, mode, started_at, ended_at, planned FROM downtime "
            "WHERE asset_id = ANY(%s) ORDER BY started_at", (asset_ids,)):
        e = ev.setdefault(asset_id, {"failures": [], "repairs": [], "down": []})
        e["down"].append((_hours(start), _hours(end) if end else np.inf))
        if not planned and mode:
            e["failures"].append((_hours(start), mode))
    for asset_id, start, end in conn.execute(
            "SELECT asset_id, started_at, finished_at FROM repairs "
            "WHERE asset_id = ANY(%s) ORDER BY started_at", (asset_ids,)):
        e = ev.setdefault(asset_id, {"failures": [], "repairs": [], "down": []})
        e["repairs"].append(_hours(start))
        e["down"].append((_hours(start), _hours(end)))
    return ev
