"""Vectorised PostgreSQL binary COPY encoding of telemetry rows ``(timestamptz, text,
float4[])``: a whole simulated block becomes one NumPy structured array, with no Python work
per row (rows with missing values, a few in a thousand, are encoded one by one).

The constants, the stream's signature and trailer, and the rows with missing values are
ingest's (:mod:`ingest.copy_binary`, which encodes the rows ingest parses). The bytes are
exactly what psycopg's ``copy.set_types(["timestamptz", "text", "float4[]"])`` + ``write_row``
produce for the same rows (``tests/test_simulator_db.py`` checks both paths
store identical rows); rows come out grouped by device-id length, order is irrelevant to COPY.

>>> import numpy as np
>>> t = np.array([0], np.int64)                     # 1970-01-01T00:00:00Z in microseconds
>>> body = encode_rows(t, ["d1"], np.array([[[1.0, np.nan]]], np.float32))
>>> len(body), body[:2]
(56, b'\\x00\\x03')
"""

from __future__ import annotations

import numpy as np

from ingest.copy_binary import FLOAT4_OID, PG_EPOCH_US, encode_row


def _row_dtype(id_len: int, n_vals: int) -> np.dtype:
    return np.dtype([
        ("nf", ">i2"), ("tl", ">i4"), ("t", ">i8"), ("dl", ">i4"), ("d", f"S{id_len}"),
        ("al", ">i4"), ("hdr", ">i4", (5,)),
        ("ev", [("l", ">i4"), ("v", ">f4")], (n_vals,)),
    ])


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
            vals = values[j, gi[i]].tolist()
            out.append(encode_row(int(t_pg[j]), ids[gi[i]], [None if v != v else v for v in vals]))
    return b"".join(out)
