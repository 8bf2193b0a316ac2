"""Our binary COPY encoder produces exactly what psycopg's write_row with set_types does, and
the database reads it back unchanged."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings as hsettings, strategies as st
from psycopg import pq

from ingest.copy_binary import encode_rows, to_pg_micros

EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)
floats32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
rows = st.lists(st.tuples(
    st.integers(0, 10**9).map(lambda ms: ms * 1000 + 800_000_000_000_000),
    st.from_regex(r"[A-Za-z0-9_.-]{1,64}", fullmatch=True),
    st.lists(st.none() | floats32, min_size=1, max_size=12)), max_size=20)


def _reference(data) -> bytes:
    """psycopg's own binary rows (its formatter, as write_row uses it)."""
    from psycopg._copy_base import BinaryFormatter
    from psycopg.adapt import Transformer

    tx = Transformer()
    tx.set_dumper_types([1184, 25, 1021], pq.Format.BINARY)     # timestamptz, text, float4[]
    f = BinaryFormatter(tx)
    out = bytearray()
    for micros, dev, vals in data:
        out += f.write_row((EPOCH + timedelta(microseconds=micros), dev, vals))
    out += f.end()
    return bytes(out)


@hsettings(max_examples=60, deadline=None)
@given(rows)
def test_same_bytes_as_psycopg(data):
    assert encode_rows(data) == _reference(data)


def test_round_trip_through_the_database(db):
    data = [(to_pg_micros(1795600800.123 + i), f"dev-{i}", [1.5, None, -2.25e10, 0.0][: 1 + i % 4])
            for i in range(50)]
    db.execute("CREATE TEMP TABLE copy_check (time timestamptz, device_id text, vals real[])")
    with db.cursor().copy("COPY copy_check FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(encode_rows(data))
    got = db.execute("SELECT time, device_id, vals FROM copy_check ORDER BY device_id").fetchall()
    want = sorted(data, key=lambda r: r[1])
    assert len(got) == 50
    for (t, d, v), (m, d2, v2) in zip(got, want):
        assert d == d2 and v == v2
        assert t == EPOCH + timedelta(microseconds=m)
    assert to_pg_micros(946684800.0) == 0 and to_pg_micros(946684800.0015) == 1500
