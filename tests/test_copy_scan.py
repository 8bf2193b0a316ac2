"""Binary COPY telemetry rows into arrays (``detection.kernels.copy_scan``): the Numba kernel
agrees with its plain-Python reference, ``decode`` gives back exactly the rows encoded, and a
damaged stream is refused with a clear error by both."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from detection.kernels.copy_scan import PG_EPOCH_US, copy_fields, copy_fields_reference, decode
from ingest.copy_binary import SIGNATURE, TRAILER, encode_row

_values = st.lists(st.one_of(st.none(), st.floats(width=32, allow_nan=False)), max_size=6)
_row = st.tuples(st.integers(-2**62, 2**62), st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=12),
                 st.one_of(st.none(), st.just("absent"), _values))


def _encode(t: int, device: str, vals) -> bytes:
    """One tuple: ``vals`` None = a NULL array, "absent" = a row of two fields, [] = an empty
    array (PostgreSQL sends it with no dimension)."""
    d = device.encode()
    if isinstance(vals, list) and vals:
        return encode_row(t, d, vals)
    head = struct.pack("!hiqi", 2 if vals == "absent" else 3, 8, t, len(d)) + d
    if vals == "absent":
        return head
    if vals is None:
        return head + struct.pack("!i", -1)
    return head + struct.pack("!iiii", 12, 0, 0, 700)


def _stream(rows) -> bytes:
    return SIGNATURE + b"".join(_encode(*r) for r in rows) + TRAILER


@settings(max_examples=200, deadline=None)
@given(st.lists(_row, max_size=30))
def test_kernel_matches_reference_and_decode_gives_the_rows_back(rows):
    buf = _stream(rows)
    a = copy_fields(np.frombuffer(buf, np.uint8))
    b = copy_fields_reference(buf)
    for x, y in zip(a[:4], b[:4]):
        np.testing.assert_array_equal(x, y)
    assert a[4] == b[4] == 0
    names, code, times, X = decode(buf)
    assert names.tolist() == sorted(set(names.tolist()))
    assert names[code].tolist() == [r[1] for r in rows]
    assert times.tolist() == [r[0] + PG_EPOCH_US for r in rows]
    width = max((len(r[2]) for r in rows if isinstance(r[2], list)), default=0)
    assert X.shape == (len(rows), width)
    for x, (_, _, vals) in zip(X, rows):
        want = np.full(width, np.nan)
        if isinstance(vals, list):
            want[:len(vals)] = [np.nan if v is None else v for v in vals]
        np.testing.assert_array_equal(x, want)


@settings(max_examples=100, deadline=None)
@given(st.lists(_row, min_size=1, max_size=8), st.data())
def test_a_cut_stream_is_refused_by_both(rows, data):
    buf = _stream(rows)
    cut = data.draw(st.integers(19, len(buf) - 1))
    assert copy_fields(np.frombuffer(buf[:cut], np.uint8))[4] == copy_fields_reference(buf[:cut])[4] == 5
    with pytest.raises(ValueError, match="ends inside a row"):
        decode(buf[:cut])


def test_other_layouts_are_refused():
    with pytest.raises(ValueError, match="not a binary COPY stream"):
        decode(b"1\t2\n")
    one_field = SIGNATURE + struct.pack("!hi", 1, 1) + b"x" + TRAILER
    with pytest.raises(ValueError, match="neither 2 nor 3 fields"):
        decode(one_field)
    int4_time = SIGNATURE + struct.pack("!hii", 2, 4, 7) + struct.pack("!i", 1) + b"x" + TRAILER
    with pytest.raises(ValueError, match="time field is not 8 bytes"):
        decode(int4_time)
    for bad in (int4_time, one_field):
        assert copy_fields(np.frombuffer(bad, np.uint8))[4] == copy_fields_reference(bad)[4] != 0
