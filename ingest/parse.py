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
from datetime import date, datetime, timedelta, timezone

import orjson

from schemas.telemetry import (MAX_FUTURE, MAX_MESSAGE_BYTES, MAX_READINGS_PER_MESSAGE,
                               MODE_EVENTS, STATE_EVENTS, as_found_error)

_FUTURE_S = MAX_FUTURE.total_seconds()
_FLOAT32_MAX = 3.4028234e38
_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z\Z")
#: RFC 3339 date-time (section 5.6), plus a space for the T (its note allows it); ASCII digits
_RFC3339_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
                         r"(?:\.([0-9]+))?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))\Z")
_EPOCH_MS_FROM = 1e11           # smaller magnitudes are epoch seconds, from here milliseconds
_EPOCH_MS_UNTIL = 1e14          # beyond: refused (microseconds or nanoseconds)
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_UNIX_ORDINAL = date(1970, 1, 1).toordinal()
_MIN_US = (datetime(1, 1, 2, tzinfo=timezone.utc) - _UNIX_EPOCH) // timedelta(microseconds=1)
_MAX_US = (datetime(9999, 12, 30, tzinfo=timezone.utc) - _UNIX_EPOCH) // timedelta(microseconds=1)
_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,62}\Z")
_DEVICE_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")
REASONS = ("oversized", "bad_topic", "malformed_json", "schema", "wrong_type", "non_finite",
           "unknown_device", "revoked_device", "unknown_sensor", "out_of_range", "future_time",
           "too_old", "duplicate_in_message", "unknown_mode")


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
    modes: tuple[str, ...] | None = None   # the model's failure modes (None: not known here)

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


def parse_time(x) -> datetime:
    """The UTC instant of a contract time (see :func:`read_time`)."""
    return read_time(x)[0]


def read_time(x) -> tuple[datetime, str]:
    """A contract time as ``(aware UTC datetime, canonical text)``; Rejected if it is not one.

    Accepted: an RFC 3339 date-time string -- ``T``, ``t`` or a space between date and time,
    a fraction of any length or none, ``Z``, ``z`` or a ``+hh:mm``/``-hh:mm`` offset, a leap
    second ``:60`` counted as the next second (as PostgreSQL does) -- or a JSON number of epoch
    seconds (``|x| < 1e11``) or epoch milliseconds (``1e11 <= x < 1e14``); 1e11 s is the year
    5138, 1e11 ms is 1973-03-03, so the magnitude tells them apart for any time a device can
    send. Times are kept to the microsecond (further digits are cut off). The canonical text is
    ``YYYY-MM-DDTHH:MM:SS.mmmZ``, or ``.uuuuuuZ`` when the time has microseconds.

    >>> read_time("2026-11-25 11:00:00.1234567+01:00")
    (datetime.datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=datetime.timezone.utc), '2026-11-25T10:00:00.123456Z')
    >>> read_time(1795600800000)[1], read_time(1795600800.5)[1]
    ('2026-11-25T10:00:00.000Z', '2026-11-25T10:00:00.500Z')
    """
    tx = type(x)
    if tx is str:
        if _TIME_RE.match(x):                     # the encoders' form: fast path
            try:
                return datetime.fromisoformat(x), x
            except ValueError:
                raise Rejected("schema", f"time {x!r} is not a valid date") from None
        return _from_us(_rfc3339_us(x))
    if tx is int or tx is float:
        if -_EPOCH_MS_FROM < x < _EPOCH_MS_FROM:
            return _from_us(round(x * 1_000_000))
        if _EPOCH_MS_FROM <= x < _EPOCH_MS_UNTIL:
            return _from_us(round(x * 1000))
        raise Rejected("schema", f"epoch time {x!r} is neither seconds (|t| < 1e11) nor "
                                 "milliseconds (1e11 <= t < 1e14)")
    raise Rejected("wrong_type", "time must be an RFC 3339 string or a number of epoch seconds "
                                 f"or milliseconds, got {tx.__name__}")


def _rfc3339_us(s: str) -> int:
    m = _RFC3339_RE.match(s)
    if m is None:
        raise Rejected("schema", f"time {s[:40]!r} is not RFC 3339 (YYYY-MM-DDTHH:MM:SS[.frac] "
                                 "with Z or an offset +hh:mm/-hh:mm)")
    y, mo, d, h, mi, sec, frac, sign, oh, om = m.groups()
    y, h, mi, sec = int(y), int(h), int(mi), int(sec)
    try:
        days = date(max(y, 1), int(mo), int(d)).toordinal() - _UNIX_ORDINAL
    except ValueError:
        raise Rejected("schema", f"time {s[:40]!r} is not a valid date") from None
    if h > 23 or mi > 59 or sec > 60 or (sign and (int(oh) > 23 or int(om) > 59)):
        raise Rejected("schema", f"time {s[:40]!r} is not a valid time of day or offset")
    if y == 0:
        raise Rejected("too_old", f"{s[:40]} is older than the retention")
    secs = days * 86400 + h * 3600 + mi * 60 + sec
    if sign:
        off = int(oh) * 3600 + int(om) * 60
        secs = secs - off if sign == "+" else secs + off
    return secs * 1_000_000 + (int(frac[:6].ljust(6, "0")) if frac else 0)


def _from_us(us: int) -> tuple[datetime, str]:
    if not _MIN_US <= us <= _MAX_US:
        raise Rejected("too_old" if us < 0 else "future_time",
                       f"{us / 1e6:.0f} s from 1970 is outside the years 1..9999")
    t = _UNIX_EPOCH + timedelta(microseconds=us)
    # schemas.telemetry.format_time's text, by datetime's C isoformat ("+00:00" -> "Z")
    return t, t.isoformat(timespec="microseconds" if us % 1000 else "milliseconds")[:-6] + "Z"


def _load(payload: bytes):
    """The JSON document of a message (any JSON value); Rejected if too large or not JSON."""
    if len(payload) > MAX_MESSAGE_BYTES:
        raise Rejected("oversized", f"{len(payload)} bytes > {MAX_MESSAGE_BYTES}")
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        msg = str(exc)
        if "infinity" in msg or b"NaN" in payload or b"Infinity" in payload:
            raise Rejected("non_finite", f"NaN/Infinity are not JSON numbers: {msg[:160]}") from None
        raise Rejected("malformed_json", msg[:200]) from None


def _check_version(doc) -> None:
    v = doc.get("v")
    if v != 1 or isinstance(v, bool):
        raise Rejected("schema", f"unsupported contract version {v!r}")


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


def _readings(doc) -> tuple[list | tuple, str]:
    """The readings of a telemetry document and the name of their time key ('t' or 'ts')."""
    if type(doc) is dict:
        if "v" in doc:
            _check_version(doc)
            if "readings" in doc:
                if len(doc) != 2:
                    raise Rejected("schema", f"unexpected keys {sorted(set(doc) - {'v', 'readings'})[:5]}")
                readings = doc["readings"]
                if type(readings) is not list or not 1 <= len(readings) <= MAX_READINGS_PER_MESSAGE:
                    raise Rejected("schema", f"readings must be a list of 1..{MAX_READINGS_PER_MESSAGE}")
                return readings, "t"
            if len(doc) != 3 or "t" not in doc or "values" not in doc:
                raise Rejected("schema", "a reading has exactly the keys v, t, values")
            return ({"t": doc["t"], "values": doc["values"]},), "t"
        if "ts" in doc:
            return (doc,), "ts"
        raise Rejected("schema", "no time: a message is {\"v\": 1, \"t\": ..., \"values\": {...}}, "
                                 "{\"v\": 1, \"readings\": [...]}, or ThingsBoard's "
                                 "{\"ts\": ..., \"values\": {...}} or a list of those")
    if type(doc) is list:
        if not 1 <= len(doc) <= MAX_READINGS_PER_MESSAGE:
            raise Rejected("schema", f"a list holds 1..{MAX_READINGS_PER_MESSAGE} readings")
        return doc, "ts"
    raise Rejected("schema", f"payload must be a JSON object or list, got {type(doc).__name__}")


def parse_telemetry(payload: bytes, info: DeviceInfo, *, now: float, oldest: float
                    ) -> list[tuple[datetime, list, str]]:
    """The readings of one telemetry message as ``[(UTC time, vals, canonical time text), ...]``;
    Rejected on any fault. Contract v1 (``{"v": 1, ...}``) or ThingsBoard's shape
    (``{"ts": ..., "values": {...}}`` or a list of those).

    ``now``/``oldest``: epoch seconds of the ingest clock and of the retention horizon.
    """
    readings, key = _readings(_load(payload))
    out = []
    seen = set()
    for r in readings:
        if type(r) is not dict or key not in r or "values" not in r:
            raise Rejected("schema", f"each reading needs {key} and values")
        if len(r) != 2:
            raise Rejected("schema", f"a reading has exactly the keys {key}, values; "
                                     f"unexpected {sorted(set(r) - {key, 'values'})[:5]}")
        t, text = read_time(r[key])
        _check_time(t, now, oldest)
        if t in seen:
            raise Rejected("duplicate_in_message", f"two readings at {text}")
        seen.add(t)
        out.append((t, _vals(r["values"], info), text))
    return out


@dataclass(frozen=True, slots=True)
class StateEvent:
    device_id: str
    time: datetime
    event: str
    mode: str | None
    code: str | None
    detail: dict


def parse_state(payload: bytes, device_id: str, *, now: float, oldest: float,
                modes: tuple[str, ...] | None = None) -> StateEvent:
    """One state event (contract ``state.v1.json``); Rejected on any fault. ``modes``: the
    device model's failure modes, which a ``detail.as_found`` report may name (None: any name)."""
    doc = _load(payload)
    if type(doc) is not dict:
        raise Rejected("schema", f"payload must be a JSON object, got {type(doc).__name__}")
    _check_version(doc)
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
    if "as_found" in detail:
        _check_as_found(detail["as_found"], kind, modes)
    return StateEvent(device_id, t, kind, mode, code, detail)


def _check_as_found(found, kind: str, modes: tuple[str, ...] | None) -> None:
    """A repair's as-found report (:func:`schemas.telemetry.as_found_error`)."""
    if kind != "repair_finished":
        raise Rejected("schema", f"as_found belongs on a repair_finished event, not {kind}")
    if (err := as_found_error(found, modes)) is not None:
        raise Rejected(*err)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)
