"""Vectorised PostgreSQL binary COPY encoding of telemetry rows ``(timestamptz, text,
float4[])``: a whole simulated block becomes one NumPy structured array, with no Python work
per row (rows with missing values, a few in a thousand, are encoded one by one).

The bytes are exactly what psycopg's ``copy.set_types(["timestamptz", "text", "float4[]"])``
+ ``write_row`` produce for the same rows (``tests/test_simulator_db.py`` checks both paths
store identical rows); rows come out grouped by device-id length, order is irrelevant to COPY.

>>> import numpy as np
>>> t = np.array([0], np.int64)                     # 1970-01-01T00:00:00Z in microseconds
>>> body = encode_rows(t, ["d1"], np.array([[[1.0, np.nan]]], np.float32))
>>> len(body), body[:2]
(56, b'\\x00\\x03')
"""

from __future__ import annotations

import struct

import numpy as np

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 - 1970-01-01 in microseconds
FLOAT4_OID = 700


def _row_dtype(id_len: int, n_vals: int) -> np.dtype:
    return np.dtype([
        ("nf", ">i2"), ("tl", ">i4"), ("t", ">i8"), ("dl", ">i4"), ("d", f"S{id_len}"),
        ("al", ">i4"), ("hdr", ">i4", (5,)),
        ("ev", [("l", ">i4"), ("v", ">f4")], (n_vals,)),
    ])


def _row_with_nulls(t_pg: int, dev: bytes, vals: np.ndarray) -> bytes:
    parts = [struct.pack(">hiqi", 3, 8, t_pg, len(dev)), dev]
    body = bytearray(struct.pack(">iiiii", 1, 1, FLOAT4_OID, len(vals), 1))
    for v in vals.tolist():
        if v != v:
            body += b"\xff\xff\xff\xff"
        else:
            body += struct.pack(">if", 4, v)
    parts.append(struct.pack(">i", len(body)))
    parts.append(bytes(body))
    return b"".join(parts)


def encode_rows(times_us: np.ndarray, device_ids: list[str], values: np.ndarray) -> bytes:
    """Binary COPY tuples (no signature/trailer) for ``values[t, device, sensor]``.

    ``times_us``: int64 microseconds since the Unix epoch (UTC); NaN values become NULL
    array elements.
    """
    T, n, S = values.shape
    if len(times_us) != T or len(device_ids) != n:
        raise ValueError("times / device_ids do not match the values' shape")
    t_pg = np.asarray(times_us, np.int64) - PG_EPOCH_US
    ids = [d.encode() for d in device_ids]
    nan_rows = np.isnan(values).any(axis=2)
    out = []
    lengths = np.array([len(b) for b in ids])
    for L in np.unique(lengths):
        gi = np.nonzero(lengths == L)[0]
        ok = ~nan_rows[:, gi]
        dj, tj = np.nonzero(ok.T)   # device-major: each device's rows together (index locality)
        if len(tj):
            arr = np.empty(len(tj), _row_dtype(int(L), S))
            arr["nf"] = 3
            arr["tl"] = 8
            arr["t"] = t_pg[tj]
            arr["dl"] = L
            arr["d"] = np.array([ids[i] for i in gi], dtype=f"S{L}")[dj]
            arr["al"] = 20 + 8 * S
            arr["hdr"] = (1, 0, FLOAT4_OID, S, 1)
            arr["ev"]["l"] = 4
            arr["ev"]["v"] = values[tj, gi[dj]]
            out.append(arr.tobytes())
        for i, j in zip(*np.nonzero(~ok.T)):
            out.append(_row_with_nulls(int(t_pg[j]), ids[gi[i]], values[j, gi[i]]))
    return b"".join(out)
