"""The contract parser: hypothesis fuzzing (it refuses with a reason, never crashes) and the
agreement of accepted messages with the JSON Schema and the encoders."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone

import jsonschema
import orjson
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from ingest.parse import (REASONS, DeviceInfo, Rejected, parse_state, parse_telemetry, parse_time,
                          split_topic)
from schemas.telemetry import (MAX_MESSAGE_BYTES, encode_readings, encode_state, format_time,
                               load_schema)
from simulator.misbehave import malformed_payloads

INFO = DeviceInfo("pump-1", "A-1", "PMP", {"vibration_rms": 0, "bearing_temp": 1, "speed": 2},
                  (0.0, -40.0, 0.0), (100.0, 200.0, 10000.0))
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc).timestamp()
OLDEST = NOW - 400 * 86400
TELEMETRY_SCHEMA = load_schema("telemetry")
STATE_SCHEMA = load_schema("state")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20)
times = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2030, 1, 1),
                     timezones=st.just(timezone.utc)).map(format_time)
sensor_values = st.dictionaries(st.sampled_from(["vibration_rms", "bearing_temp", "speed"]),
                                st.none() | st.floats(0, 100), min_size=1)


def _parse(payload: bytes):
    try:
        return parse_telemetry(payload, INFO, now=NOW, oldest=OLDEST)
    except Rejected as exc:
        assert exc.reason in REASONS
        return None


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash(payload):
    _parse(payload)


@given(json_values)
def test_arbitrary_json_never_crashes(doc):
    _parse(json.dumps(doc).encode())


@given(st.dictionaries(st.sampled_from(["v", "t", "values", "readings", "x"]),
                       json_values | times | sensor_values, max_size=4))
def test_near_miss_documents_never_crash(doc):
    _parse(json.dumps(doc).encode())
    try:
        parse_state(json.dumps(doc).encode(), "pump-1", now=NOW, oldest=OLDEST)
    except Rejected as exc:
        assert exc.reason in REASONS


@hsettings(max_examples=200)
@given(st.lists(st.tuples(times, sensor_values), min_size=1, max_size=20,
                unique_by=lambda r: r[0]))
def test_encoded_readings_conform_to_schema_and_parse_back(readings):
    payload = encode_readings(readings)
    jsonschema.validate(orjson.loads(payload), TELEMETRY_SCHEMA)
    try:
        rows = parse_telemetry(payload, INFO, now=NOW, oldest=OLDEST)
    except Rejected as exc:
        assert exc.reason in ("future_time", "too_old")
        return
    assert len(rows) == len(readings)
    for (t, vals, text), (t_in, values) in zip(rows, readings):
        assert format_time(t) == t_in == text
        for name, v in values.items():
            assert vals[INFO.positions[name]] == v


@given(json_values)
def test_whatever_the_parser_accepts_the_schema_accepts(doc):
    payload = json.dumps(doc).encode()
    if _parse(payload) is not None:
        jsonschema.validate(doc, TELEMETRY_SCHEMA)


def _reading(values, t="2026-11-25T09:59:00.000Z") -> bytes:
    return orjson.dumps({"v": 1, "t": t, "values": values})


@pytest.mark.parametrize("payload,reason", [
    (b"\xff\xfe", "malformed_json"),
    (b"[1, 2]", "schema"),
    (b'{"v": 2, "t": "2026-11-25T09:59:00.000Z", "values": {"speed": 1}}', "schema"),
    (b'{"v": 1, "t": "2026-11-25 09:59:00", "values": {"speed": 1}}', "schema"),
    (b'{"v": 1, "t": "2026-13-45T09:59:00.000Z", "values": {"speed": 1}}', "schema"),
    (b'{"v": 1, "t": "2026-11-25T09:59:00.000+24:00", "values": {"speed": 1}}', "schema"),
    (b'{"v": 1, "t": "2026-11-25T09:59:00.Z", "values": {"speed": 1}}', "schema"),
    (b'{"v": 1, "t": "2026-11-25T25:59:00Z", "values": {"speed": 1}}', "schema"),
    (b'{"v": 1, "t": "2026-11-25T09:59:00+0100", "values": {"speed": 1}}', "schema"),
    (b'{"v": 1, "t": true, "values": {"speed": 1}}', "wrong_type"),
    (b'{"v": 1, "t": [1795600800], "values": {"speed": 1}}', "wrong_type"),
    (b'{"v": 1, "t": 1795600800000000, "values": {"speed": 1}}', "schema"),
    (b'{"v": 1, "t": "0000-01-01T00:00:00Z", "values": {"speed": 1}}', "too_old"),
    (b'{"v": 1, "t": "9999-12-31T23:59:59-23:59", "values": {"speed": 1}}', "future_time"),
    (b'{"v": 1, "t": 1795601101, "values": {"speed": 1}}', "future_time"),
    (b'{"v": 1, "t": 1795601101000, "values": {"speed": 1}}', "future_time"),
    (b'{"speed": 1}', "schema"),
    (b'{"ts": 1795600740000, "values": {"speed": 1}, "v": 2}', "schema"),
    (b'{"ts": 1795600740000, "values": {"speed": 1}, "x": 2}', "schema"),
    (b'{"ts": 1795600740000, "values": {"rpm": 1}}', "unknown_sensor"),
    (b'{"ts": "1795600740000", "values": {"speed": 1}}', "schema"),
    (b'[]', "schema"),
    (b'[{"ts": 1795600740000, "values": {"speed": 1}}, {"ts": 1795600740.0, "values": {"speed": 2}}]',
     "duplicate_in_message"),
    (b'[{"ts": 1795600740000, "values": {"speed": 1}}, {"t": 1795600741000, "values": {"speed": 2}}]',
     "schema"),
    (b'[{"ts": 1795600740000, "values": {"speed": "1"}}]', "wrong_type"),
    (_reading({"speed": True}), "wrong_type"),
    (_reading({"speed": [1]}), "wrong_type"),
    (b'{"v": 1, "t": "2026-11-25T09:59:00.000Z", "values": {"speed": Infinity}}', "non_finite"),
    (b'{"v": 1, "t": "2026-11-25T09:59:00.000Z", "values": {"speed": 1e999}}', "non_finite"),
    (_reading({"rpm": 1.0}), "unknown_sensor"),
    (_reading({"speed": 1e39}), "out_of_range"),
    (_reading({"speed": 1.0}, "2026-11-25T10:05:01.000Z"), "future_time"),
    (_reading({"speed": 1.0}, "2025-10-01T00:00:00.000Z"), "too_old"),
    (_reading({}), "schema"),
    (orjson.dumps({"v": 1, "readings": []}), "schema"),
    (orjson.dumps({"v": 1, "readings": [{"t": "2026-11-25T09:59:00.000Z", "values": {"speed": 1}}] * 2}),
     "duplicate_in_message"),
    (orjson.dumps({"v": 1, "readings": [{"t": format_time(NOW - 600 + i), "values": {"speed": 1}}
                                        for i in range(501)]}), "schema"),
    (b" " * (MAX_MESSAGE_BYTES + 1), "oversized"),
])
def test_each_fault_has_its_reason(payload, reason):
    with pytest.raises(Rejected) as exc:
        parse_telemetry(payload, INFO, now=NOW, oldest=OLDEST)
    assert exc.value.reason == reason


def test_future_limit_is_five_minutes():
    ok = _reading({"speed": 1.0}, format_time(NOW + 299))
    assert parse_telemetry(ok, INFO, now=NOW, oldest=OLDEST)[0][1] == [None, None, 1.0]


def test_topics():
    assert split_topic("prognos/v1/devices/p-1/state", "prognos/v1") == ("p-1", "state")
    for bad in ("prognos/v1/devices/p-1", "prognos/v1/devices//telemetry", "other/devices/p/telemetry",
                "prognos/v1/devices/p-1/telemetry/x", "prognos/v1/devices/a b/telemetry"):
        with pytest.raises(Rejected):
            split_topic(bad, "prognos/v1")


@given(st.sampled_from(["online", "failure", "repair_finished", "fault"]), times,
       st.none() | st.just("bearing_wear"), st.none() | st.just("E42"))
def test_state_events_round_trip(kind, t, mode, code):
    ev = {"event": kind, "t": t, "mode": mode, "code": code}
    try:
        payload = encode_state(ev)
    except ValueError:
        assert kind in ("failure", "repair_finished") and mode is None
        return
    jsonschema.validate(orjson.loads(payload), STATE_SCHEMA)
    try:
        got = parse_state(payload, "pump-1", now=NOW, oldest=OLDEST)
    except Rejected as exc:
        assert exc.reason in ("future_time", "too_old")
        return
    assert (got.event, got.mode, got.code, format_time(got.time)) == (kind, mode, code, t)


def test_nan_values_never_reach_the_database():
    for v in (math.nan, math.inf):
        with pytest.raises(Rejected):
            parse_telemetry(encode_readings([(NOW - 1, {"speed": v})]).replace(b"null", b"NaN"),
                            INFO, now=NOW, oldest=OLDEST)


# -- every time form of the contract ---------------------------------------------------------
instants = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 11, 25, 10),
                        timezones=st.just(timezone.utc))


@st.composite
def rfc3339(draw):
    """(text, the instant it names to the microsecond): any separator, fraction and offset."""
    t = draw(instants)
    off = draw(st.integers(-(23 * 60 + 59), 23 * 60 + 59))
    zone = draw(st.sampled_from(["Z", "z", "offset"])) if off == 0 else "offset"
    local = t + timedelta(minutes=off)
    digits = draw(st.integers(0, 9))
    frac = (f"{t.microsecond:06d}" + draw(st.text("0123456789", min_size=3, max_size=3)))[:digits]
    if zone == "offset":
        sign = draw(st.sampled_from("+-")) if off == 0 else ("+" if off > 0 else "-")
        zone = f"{sign}{abs(off) // 60:02d}:{abs(off) % 60:02d}"
    text = (local.strftime("%Y-%m-%d") + draw(st.sampled_from("Tt ")) + local.strftime("%H:%M:%S")
            + (f".{frac}" if digits else "") + zone)
    kept = min(digits, 6)
    want = t.replace(microsecond=t.microsecond // 10 ** (6 - kept) * 10 ** (6 - kept))
    return text, want


@st.composite
def epoch_numbers(draw):
    """(number, the instant it names): epoch seconds or milliseconds, int or float."""
    ms = draw(st.integers(int(NOW * 1000) - 300 * 86_400_000, int(NOW * 1000)))
    form = draw(st.sampled_from(["s_int", "s_float", "ms_int", "ms_float"]))
    x = {"s_int": ms // 1000, "s_float": ms / 1000, "ms_int": ms, "ms_float": float(ms)}[form]
    ms = ms // 1000 * 1000 if form == "s_int" else ms
    return x, datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=ms)


@hsettings(max_examples=300)
@given(st.lists(rfc3339() | epoch_numbers(), min_size=1, max_size=5, unique_by=lambda r: r[1]),
       st.sampled_from(["v1", "thingsboard"]), sensor_values)
def test_every_time_form_is_stored_as_its_utc_instant(stamps, shape, values):
    key = "t" if shape == "v1" else "ts"
    readings = [{key: x, "values": values} for x, _ in stamps]
    if shape == "v1":
        doc = {"v": 1, **readings[0]} if len(readings) == 1 else {"v": 1, "readings": readings}
    else:
        doc = readings[0] if len(readings) == 1 else readings
    jsonschema.validate(doc, TELEMETRY_SCHEMA)
    rows = parse_telemetry(orjson.dumps(doc), INFO, now=NOW, oldest=OLDEST)
    assert [t for t, _, _ in rows] == [want for _, want in stamps]
    for t, vals, text in rows:
        assert t.tzinfo == timezone.utc
        assert text == format_time(t, 6 if t.microsecond % 1000 else 3)
        assert parse_time(text) == t                        # the stored text names the same time
        assert vals == [values.get(n) for n in ("vibration_rms", "bearing_temp", "speed")]


@given(rfc3339())
def test_state_events_take_the_same_time_forms(stamp):
    text, want = stamp
    doc = {"v": 1, "t": text, "event": "online"}
    jsonschema.validate(doc, STATE_SCHEMA)
    assert parse_state(orjson.dumps(doc), "pump-1", now=NOW, oldest=OLDEST).time == want


def test_thingsboard_readings_equal_contract_readings():
    ms = int(NOW * 1000) - 60_000
    tb = orjson.dumps([{"ts": ms + i * 1000, "values": {"speed": float(i)}} for i in range(3)])
    v1 = encode_readings([((ms + i * 1000) / 1000, {"speed": float(i)}) for i in range(3)])
    assert (parse_telemetry(tb, INFO, now=NOW, oldest=OLDEST)
            == parse_telemetry(v1, INFO, now=NOW, oldest=OLDEST))


def test_leap_second_is_the_next_second():
    got = parse_time("2026-06-30T23:59:60Z")
    assert got == datetime(2026, 7, 1, tzinfo=timezone.utc)


def test_seconds_and_milliseconds_are_told_apart_by_magnitude():
    assert parse_time(99_999_999_999) == datetime(5138, 11, 16, 9, 46, 39, tzinfo=timezone.utc)
    assert parse_time(100_000_000_000) == datetime(1973, 3, 3, 9, 46, 40, tzinfo=timezone.utc)


def test_the_simulators_malformed_payloads_are_all_refused():
    info = DeviceInfo("d", "a", "m", {"vibration_rms": 0}, (0.0,), (100.0,))
    for kind, payload in malformed_payloads(format_time(NOW - 60), "vibration_rms"):
        try:
            parse_telemetry(payload, info, now=NOW, oldest=OLDEST)
        except Rejected:
            continue
        pytest.fail(f"the simulator's malformed payload {kind!r} is accepted")


def test_as_found_is_checked_against_the_grades_and_the_models_modes():
    modes = ("bearing_wear", "fouling")
    ok = {"v": 1, "t": "2026-11-25T10:00:00.000Z", "event": "repair_finished", "mode": "bearing_wear",
          "detail": {"as_found": {"bearing_wear": "failed", "fouling": "worn"}}}
    got = parse_state(orjson.dumps(ok), "pump-1", now=NOW, oldest=OLDEST, modes=modes)
    assert got.detail["as_found"] == {"bearing_wear": "failed", "fouling": "worn"}
    jsonschema.validate(ok, STATE_SCHEMA)
    for found, kind, reason in [({"fouling": "rusty"}, "repair_finished", "schema"),
                                ({"fouling": 3}, "repair_finished", "schema"),
                                ("worn", "repair_finished", "schema"),
                                ({"Fouling": "worn"}, "repair_finished", "schema"),
                                ({"rotor": "good"}, "repair_finished", "unknown_mode"),
                                ({"fouling": "worn"}, "failure", "schema")]:
        doc = {**ok, "event": kind, "detail": {"as_found": found}}
        with pytest.raises(Rejected) as exc:
            parse_state(orjson.dumps(doc), "pump-1", now=NOW, oldest=OLDEST, modes=modes)
        assert exc.value.reason == reason, found
        if reason == "schema" and kind == "repair_finished":
            with pytest.raises(jsonschema.ValidationError):
                jsonschema.validate(doc, STATE_SCHEMA)
    # a mode name the model does not have passes where the modes are not known (the schema alone)
    doc = {**ok, "detail": {"as_found": {"rotor": "good"}}}
    assert parse_state(orjson.dumps(doc), "pump-1", now=NOW, oldest=OLDEST).detail["as_found"] == {"rotor": "good"}
