"""Validate one MQTT message against telemetry contract v1 and the device's model.

Pure functions, no I/O: the writer thread calls them for every message, and a refusal is a
:class:`Rejected` carrying a short machine reason (the ``dead_letters.reason``) and a human
detail. Nothing here may raise anything else on any input (fuzzed with hypothesis).

>>> info = DeviceInfo("pump-1", "A-1", "PMP", {"vibration_rms": 0, "bearing_temp": 1},
...                   (0.0, -40.0), (100.0, 200.0))
>>> now = parse_time("2026-11-25T10:00:05.000Z").timestamp()
>>> rows = parse_telemetry(b'{"v":1,"t":"2026-11-25T10:00:00.000Z","values":{"bearing_temp":61.5}}',
...                        info, now=now, oldest=0.0)
>>> t, vals, text = rows[0]
>>> t.isoformat(), vals, text
('2026-11-25T10:00:00+00:00', [None, 61.5], '2026-11-25T10:00:00.000Z')
>>> try:
...     parse_telemetry(b'{"v":1,"t":"2026-11-25T10:00:00.000Z","values":{"rpm":1}}', info, now=now, oldest=0.0)
... except Rejected as exc:
...     print(exc.reason)
unknown_sensor
>>> split_topic("prognos/v1/devices/pump-1/telemetry", "prognos/v1")
('pump-1', 'telemetry')
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

import orjson

from schemas.telemetry import (MAX_FUTURE, MAX_MESSAGE_BYTES, MAX_READINGS_PER_MESSAGE,
                               MODE_EVENTS, STATE_EVENTS)

_FUTURE_S = MAX_FUTURE.total_seconds()
_FLOAT32_MAX = 3.4028234e38
_TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")
_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,62}\Z")
_DEVICE_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")
REASONS = ("oversized", "bad_topic", "malformed_json", "schema", "wrong_type", "non_finite",
           "unknown_device", "revoked_device", "unknown_sensor", "out_of_range", "future_time",
           "too_old", "duplicate_in_message")


class Rejected(ValueError):
    """A message that breaks the contract: ``reason`` (one of REASONS) and ``detail``."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What ingest knows about a device: its asset and its model's sensors."""

    device_id: str
    asset_id: str
    model_id: str
    positions: dict[str, int]           # sensor name -> index in vals (sensors.position)
    lo: tuple[float, ...]               # plausible range per position
    hi: tuple[float, ...]
    active: bool = True
    units: dict[str, str] = field(default_factory=dict)

    @property
    def width(self) -> int:
        return len(self.lo)


def split_topic(topic: str, prefix: str) -> tuple[str, str]:
    """(device_id, 'telemetry'|'state') of ``{prefix}/devices/{id}/{kind}``; Rejected else."""
    head = prefix + "/devices/"
    if topic.startswith(head):
        rest = topic[len(head):]
        device_id, sep, kind = rest.partition("/")
        if sep and kind in ("telemetry", "state") and _DEVICE_RE.match(device_id):
            return device_id, kind
    raise Rejected("bad_topic", f"not {prefix}/devices/<device_id>/telemetry|state")


def parse_time(s) -> datetime:
    """Strict RFC 3339 UTC with milliseconds ('2026-11-25T10:00:00.000Z')."""
    if not isinstance(s, str):
        raise Rejected("wrong_type", f"time must be a string, got {type(s).__name__}")
    if not _TIME_RE.match(s):
        raise Rejected("schema", f"time {s[:40]!r} is not RFC 3339 UTC with milliseconds")
    try:
        return datetime.fromisoformat(s)
    except ValueError:
        raise Rejected("schema", f"time {s!r} is not a valid date") from None


def _load(payload: bytes):
    if len(payload) > MAX_MESSAGE_BYTES:
        raise Rejected("oversized", f"{len(payload)} bytes > {MAX_MESSAGE_BYTES}")
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        msg = str(exc)
        if "infinity" in msg or b"NaN" in payload or b"Infinity" in payload:
            raise Rejected("non_finite", f"NaN/Infinity are not JSON numbers: {msg[:160]}") from None
        raise Rejected("malformed_json", msg[:200]) from None
    if not isinstance(doc, dict):
        raise Rejected("schema", f"payload must be a JSON object, got {type(doc).__name__}")
    if doc.get("v") != 1 or isinstance(doc.get("v"), bool):
        raise Rejected("schema", f"unsupported contract version {doc.get('v')!r}")
    return doc


def _check_time(t: datetime, now: float, oldest: float) -> None:
    ts = t.timestamp()
    if ts > now + _FUTURE_S:
        raise Rejected("future_time", f"{t.isoformat()} is more than {_FUTURE_S:.0f} s ahead")
    if ts < oldest:
        raise Rejected("too_old", f"{t.isoformat()} is older than the retention")


def _vals(values, info: DeviceInfo) -> list:
    if not isinstance(values, dict) or not values:
        raise Rejected("schema", "values must be a non-empty object")
    out = [None] * info.width
    positions, lo, hi = info.positions, info.lo, info.hi
    for name, v in values.items():
        pos = positions.get(name)
        if pos is None:
            raise Rejected("unknown_sensor", f"{name[:64]!r} is not a sensor of model {info.model_id}")
        if v is None:
            continue
        if type(v) is not float and (type(v) is not int):
            raise Rejected("wrong_type", f"{name}: {type(v).__name__} is not a number")
        fv = float(v)
        if not math.isfinite(fv):
            raise Rejected("non_finite", f"{name}: {str(v)[:40]}")
        if not lo[pos] <= fv <= hi[pos] or abs(fv) > _FLOAT32_MAX:
            raise Rejected("out_of_range", f"{name}={fv} outside [{lo[pos]}, {hi[pos]}]")
        out[pos] = fv
    return out


def parse_telemetry(payload: bytes, info: DeviceInfo, *, now: float, oldest: float
                    ) -> list[tuple[datetime, list, str]]:
    """The readings of one telemetry message as ``[(time, vals, time as sent), ...]``;
    Rejected on any fault.

    ``now``/``oldest``: epoch seconds of the ingest clock and of the retention horizon.
    """
    doc = _load(payload)
    if "readings" in doc:
        if set(doc) != {"v", "readings"}:
            raise Rejected("schema", f"unexpected keys {sorted(set(doc) - {'v', 'readings'})[:5]}")
        readings = doc["readings"]
        if not isinstance(readings, list) or not 1 <= len(readings) <= MAX_READINGS_PER_MESSAGE:
            raise Rejected("schema", f"readings must be a list of 1..{MAX_READINGS_PER_MESSAGE}")
    else:
        if set(doc) != {"v", "t", "values"}:
            raise Rejected("schema", "a reading has exactly the keys v, t, values")
        readings = (doc,)
    out = []
    seen = set()
    for r in readings:
        if not isinstance(r, dict) or "t" not in r or "values" not in r:
            raise Rejected("schema", "each reading needs t and values")
        if len(r) != (3 if r is doc else 2):
            raise Rejected("schema", "unexpected keys in a reading")
        t = parse_time(r["t"])
        _check_time(t, now, oldest)
        if t in seen:
            raise Rejected("duplicate_in_message", f"two readings at {r['t']}")
        seen.add(t)
        out.append((t, _vals(r["values"], info), r["t"]))
    return out


@dataclass(frozen=True, slots=True)
class StateEvent:
    device_id: str
    time: datetime
    event: str
    mode: str | None
    code: str | None
    detail: dict


def parse_state(payload: bytes, device_id: str, *, now: float, oldest: float) -> StateEvent:
    """One state event (contract ``state.v1.json``); Rejected on any fault."""
    doc = _load(payload)
    extra = set(doc) - {"v", "t", "event", "mode", "code", "detail"}
    if extra:
        raise Rejected("schema", f"unexpected keys {sorted(extra)[:5]}")
    t = parse_time(doc.get("t"))
    kind = doc.get("event")
    if kind not in STATE_EVENTS:
        raise Rejected("schema", f"event {str(kind)[:40]!r} is not one of {STATE_EVENTS}")
    if kind != "offline":               # a Last Will carries its connect time
        _check_time(t, now, oldest)
    mode = doc.get("mode")
    if mode is not None and (not isinstance(mode, str) or not _NAME_RE.match(mode)):
        raise Rejected("schema", "mode must be a lower-case name")
    if kind in MODE_EVENTS and mode is None:
        raise Rejected("schema", f"a {kind} event needs a mode")
    code = doc.get("code")
    if code is not None and (not isinstance(code, str) or len(code) > 64):
        raise Rejected("schema", "code must be a string of at most 64 characters")
    detail = doc.get("detail", {})
    if not isinstance(detail, dict):
        raise Rejected("schema", "detail must be an object")
    return StateEvent(device_id, t, kind, mode, code, detail)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)
