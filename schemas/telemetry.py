"""Telemetry contract v1: topics, limits and the encoders devices (and the simulator) use.

The JSON Schemas in ``schemas/contract/`` are the normative text; this module is the one
place in code that builds what they describe, so the simulator publishes exactly what ingest
accepts.

>>> telemetry_topic("pump-7")
'prognos/v1/devices/pump-7/telemetry'
>>> format_time(1795600800.0)
'2026-11-25T10:00:00.000Z'
>>> encode_readings([("2026-11-25T10:00:00.000Z", {"vibration_rms": 2.31})])
b'{"v":1,"t":"2026-11-25T10:00:00.000Z","values":{"vibration_rms":2.31}}'
>>> len(orjson.loads(encode_readings([(1795600800.0, {"a": 1.0}), (1795600801.0, {"a": None})]))["readings"])
2
>>> encode_state({"event": "failure", "t": 1795600800.0, "mode": "bearing_wear"})
b'{"v":1,"t":"2026-11-25T10:00:00.000Z","event":"failure","mode":"bearing_wear"}'
"""

from __future__ import annotations

import math
import re
import time as _time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

CONTRACT_VERSION = 1
DEFAULT_PREFIX = "prognos/v1"
#: Largest accepted MQTT payload (bytes); larger messages are dead-lettered.
MAX_MESSAGE_BYTES = 256 * 1024
#: Readings in one batch message.
MAX_READINGS_PER_MESSAGE = 500
#: Readings stamped further ahead of the ingest clock than this are refused.
MAX_FUTURE = timedelta(minutes=5)
STATE_EVENTS = ("online", "offline", "fault", "start", "stop", "failure",
                "repair_started", "repair_finished")
#: Events that must name the failure mode.
MODE_EVENTS = ("failure", "repair_started", "repair_finished")
#: As-found condition a technician may report per failure mode of the asset on a repair_finished
#: event (``detail.as_found``: mode -> grade), worst last: ``good`` (nothing to see), ``worn``
#: (visible wear: the degradation is under way, the part still serviceable), ``degraded``
#: (worn beyond service: fixed while there), ``failed``.
AS_FOUND_GRADES = ("good", "worn", "degraded", "failed")


def as_found_error(found, modes: Sequence[str] | None = None) -> tuple[str, str] | None:
    """What is wrong with an as-found report ``found`` (mode -> grade), as ``(reason, detail)``
    (reason ``unknown_mode`` when it names a mode not in ``modes``, else ``schema``); None when
    it is valid. ``modes``: the asset model's failure modes (None: any well-formed name).

    >>> as_found_error({"fouling": "worn"}, ["fouling", "seal_leak"]) is None
    True
    >>> as_found_error({"fouling": "rusty"})[0], as_found_error({"rotor": "good"}, ["fouling"])[0]
    ('schema', 'unknown_mode')
    """
    if not isinstance(found, dict):
        return "schema", "as_found must be an object of failure mode -> grade"
    for name, grade in found.items():
        if not isinstance(name, str) or not _MODE_NAME.match(name):
            return "schema", f"as_found key {str(name)[:64]!r} is not a failure mode name"
        if modes is not None and name not in modes:
            return "unknown_mode", f"as_found names {name!r}, not a failure mode of the asset's model"
        if not isinstance(grade, str) or grade not in AS_FOUND_GRADES:
            return "schema", (f"as_found grade of {name} must be one of {', '.join(AS_FOUND_GRADES)}, "
                              f"got {str(grade)[:40]!r}")
    return None
CONTRACT_DIR = Path(__file__).resolve().parent / "contract"
_MODE_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}\Z")

TimeLike = datetime | str | float | int
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_US = timedelta(microseconds=1)


def telemetry_topic(device_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/devices/{device_id}/telemetry"


def state_topic(device_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/devices/{device_id}/state"


def load_schema(name: str = "telemetry") -> dict:
    """The JSON Schema of ``name`` ('telemetry' or 'state'), version 1."""
    return orjson.loads((CONTRACT_DIR / f"{name}.v{CONTRACT_VERSION}.json").read_bytes())


def format_time(t: TimeLike, digits: int = 3) -> str:
    """RFC 3339 UTC (``...Z``) with ``digits`` (3 or 6) fraction digits, from a datetime (aware;
    naive means UTC), epoch seconds or an already formatted string (returned unchanged).

    Times are rounded to the millisecond (``digits=3``, what the encoders send) or to the
    microsecond (``digits=6``, PostgreSQL's resolution).

    >>> format_time(datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=timezone.utc), 6)
    '2026-11-25T10:00:00.123456Z'
    """
    if isinstance(t, str):
        return t
    scale = 10 ** (6 - digits)
    if isinstance(t, datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=timezone.utc)
        us = (t - _UNIX_EPOCH) // _ONE_US
        units = (us + scale // 2) // scale
    else:
        ts = float(t)
        if not math.isfinite(ts):
            raise ValueError(f"time is not finite: {t!r}")
        units = int(round(ts * (10 ** digits)))
    sec, frac = divmod(units, 10 ** digits)
    g = _time.gmtime(sec)
    return (f"{g.tm_year:04d}-{g.tm_mon:02d}-{g.tm_mday:02d}T"
            f"{g.tm_hour:02d}:{g.tm_min:02d}:{g.tm_sec:02d}.{frac:0{digits}d}Z")


def encode_readings(readings: Sequence[tuple[TimeLike, Mapping[str, float | None]]]) -> bytes:
    """One message for 1..500 readings: the single-reading form for one, the batch form else."""
    n = len(readings)
    if n == 0 or n > MAX_READINGS_PER_MESSAGE:
        raise ValueError(f"a message holds 1..{MAX_READINGS_PER_MESSAGE} readings, not {n}")
    if n == 1:
        t, values = readings[0]
        return orjson.dumps({"v": CONTRACT_VERSION, "t": format_time(t), "values": values})
    return orjson.dumps({"v": CONTRACT_VERSION,
                         "readings": [{"t": format_time(t), "values": v} for t, v in readings]})


def chunk_readings(readings: Sequence, size: int) -> Iterable[Sequence]:
    """Split readings into messages of at most ``size`` (<= 500) readings."""
    size = max(1, min(int(size), MAX_READINGS_PER_MESSAGE))
    for i in range(0, len(readings), size):
        yield readings[i:i + size]


def encode_state(ev: Mapping) -> bytes:
    """A state event message; ``ev`` holds ``event`` and optionally ``t`` (default now),
    ``mode``, ``code``, ``detail``."""
    kind = ev.get("event")
    if kind not in STATE_EVENTS:
        raise ValueError(f"unknown state event {kind!r}; one of {STATE_EVENTS}")
    if kind in MODE_EVENTS and not ev.get("mode"):
        raise ValueError(f"a {kind} event needs a mode")
    out: dict = {"v": CONTRACT_VERSION, "t": format_time(ev.get("t", _time.time())), "event": kind}
    for key in ("mode", "code", "detail"):
        if ev.get(key) is not None:
            out[key] = ev[key]
    return orjson.dumps(out)
