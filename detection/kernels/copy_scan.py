"""Telemetry rows from PostgreSQL's binary COPY stream straight into NumPy arrays.

The detection service reads a backlog of telemetry at hundreds of thousands of rows a minute;
fetched as Python rows, every reading becomes a tuple, a string, a datetime and a list of
floats before it is turned back into arrays (about half the service's time at one reading a
minute). ``COPY (SELECT device_id, time[, vals]) TO STDOUT (FORMAT BINARY)`` hands the same
rows as one buffer: the Numba kernel ``copy_fields`` walks it once and records where each field
lies, and ``decode`` gathers the fields with NumPy. Columns, in order (telemetry's, as ingest
writes them, :mod:`ingest.copy_binary`): ``timestamptz``, ``text`` (the device), and optionally ``real[]`` (one dimension; NULL elements and a NULL array read
as NaN, positions beyond a row's array too). Rows of another layout are refused with a clear
error.

``copy_fields`` (Numba) and ``copy_fields_reference`` (plain Python, ``struct``) agree.

>>> from ingest.copy_binary import encode_rows
>>> buf = encode_rows([(1_000_000, "d1", [1.5, None])])
>>> names, code, t, X = decode(buf)
>>> names[code].tolist(), t.tolist(), X.tolist()
(['d1'], [946684801000000], [[1.5, nan]])
"""

from __future__ import annotations

import struct

import numpy as np
from numba import njit

from detection.kernels.config import SERIAL

#: 2000-01-01T00:00:00Z in Unix microseconds (PostgreSQL's timestamp epoch).
PG_EPOCH_US = 946_684_800_000_000
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER = len(_SIGNATURE) + 8         # signature, flags, header extension length (0)
#: Error codes of the kernel (Numba raises no formatted errors).
ERRORS = {1: "not a binary COPY stream", 2: "a row has neither 2 nor 3 fields",
          3: "the time field is not 8 bytes", 4: "an array has more than one dimension or an element "
          "that is not 4 bytes", 5: "the stream ends inside a row"}


@njit(**SERIAL)
def _i32(b, k):
    v = (np.int64(b[k]) << 24) | (np.int64(b[k + 1]) << 16) | (np.int64(b[k + 2]) << 8) | np.int64(b[k + 3])
    return v - (np.int64(1) << 32) if v >= (np.int64(1) << 31) else v


@njit(**SERIAL)
def _walk(b, fill, dev_off, dev_len, t_off, v_off):
    """One pass over the tuples: counts (rows, widest array, longest text) and, with ``fill``,
    the offsets. Returns (rows, width, text length, error code)."""
    n = len(b)
    if n < 19:
        return 0, 0, 0, 1
    k = 15
    k += 4 + _i32(b, 15)                       # header extension
    rows = 0
    width = 0
    longest = 0
    while True:
        if k + 2 > n:
            return rows, width, longest, 5
        nf = (np.int64(b[k]) << 8) | np.int64(b[k + 1])
        k += 2
        if nf == 0xFFFF:                       # trailer
            return rows, width, longest, 0
        if nf != 2 and nf != 3:
            return rows, width, longest, 2
        if k + 4 > n:
            return rows, width, longest, 5
        ln = _i32(b, k)
        k += 4
        if ln != 8 or k + 8 > n:
            return rows, width, longest, 3 if ln != 8 else 5
        if fill:
            t_off[rows] = k
        k += 8
        if k + 4 > n:
            return rows, width, longest, 5
        ln = _i32(b, k)
        k += 4
        if ln < 0 or k + ln > n:
            return rows, width, longest, 5
        if fill:
            dev_off[rows] = k
            dev_len[rows] = ln
        longest = max(longest, ln)
        k += ln
        if nf == 3:
            if k + 4 > n:
                return rows, width, longest, 5
            ln = _i32(b, k)
            k += 4
            if ln > 0:
                end = k + ln
                if end > n or ln < 12:
                    return rows, width, longest, 5
                ndim = _i32(b, k)
                if ndim > 1:
                    return rows, width, longest, 4
                m = 0
                e = k + 12
                if ndim == 1:
                    m = _i32(b, e)
                    e += 8
                width = max(width, m)
                for j in range(m):
                    if e + 4 > end:
                        return rows, width, longest, 5
                    el = _i32(b, e)
                    e += 4
                    if el == 4:
                        if e + 4 > end:
                            return rows, width, longest, 5
                        if fill:
                            v_off[rows, j] = e
                        e += 4
                    elif el != -1:
                        return rows, width, longest, 4
                k = end
        rows += 1


@njit(**SERIAL)
def copy_fields(b):
    """Offsets of the fields of every ``(timestamptz, text[, real[]])`` tuple of a binary COPY
    stream ``b`` (uint8):
    ``(dev_off, dev_len, t_off, v_off[rows, width], code)``; ``v_off`` is -1 for a NULL or
    absent element; ``code`` != 0 is an error (``ERRORS``)."""
    z = np.zeros(0, np.int64)
    rows, width, _, code = _walk(b, False, z, z, z, np.zeros((0, 0), np.int64))
    dev_off = np.zeros(rows, np.int64)
    dev_len = np.zeros(rows, np.int64)
    t_off = np.zeros(rows, np.int64)
    v_off = np.full((rows, width), -1, np.int64)
    if code == 0:
        _walk(b, True, dev_off, dev_len, t_off, v_off)
    return dev_off, dev_len, t_off, v_off, code


def copy_fields_reference(buf: bytes):
    """Plain-Python reference of :func:`copy_fields` (same outputs)."""
    i32 = struct.Struct("!i").unpack_from
    rows: list[tuple[int, int, int, list[int]]] = []

    def done(code):
        width = max((len(r[3]) for r in rows), default=0)
        v = np.full((len(rows), width), -1, np.int64)
        for i, r in enumerate(rows):
            v[i, :len(r[3])] = r[3]
        return (np.array([r[0] for r in rows], np.int64), np.array([r[1] for r in rows], np.int64),
                np.array([r[2] for r in rows], np.int64), v, code)

    n = len(buf)
    if n < 19:
        return done(1)
    k = 19 + i32(buf, 15)[0]
    while True:
        if k + 2 > n:
            return done(5)
        nf = struct.unpack_from("!H", buf, k)[0]
        k += 2
        if nf == 0xFFFF:
            return done(0)
        if nf not in (2, 3):
            return done(2)
        if k + 4 > n:
            return done(5)
        if i32(buf, k)[0] != 8:
            return done(3)
        if k + 12 > n:
            return done(5)
        t = k + 4
        k += 12
        if k + 4 > n or (ln := i32(buf, k)[0]) < 0 or k + 4 + ln > n:
            return done(5)
        dev = (k + 4, ln)
        k += 4 + ln
        offs: list[int] = []
        if nf == 3:
            if k + 4 > n:
                return done(5)
            ln = i32(buf, k)[0]
            k += 4
            if ln > 0:
                end = k + ln
                if end > n or ln < 12:
                    return done(5)
                ndim = i32(buf, k)[0]
                if ndim > 1:
                    return done(4)
                m, e = 0, k + 12
                if ndim == 1:
                    m, e = i32(buf, e)[0], e + 8
                for _ in range(m):
                    if e + 4 > end:
                        return done(5)
                    el = i32(buf, e)[0]
                    e += 4
                    if el == 4:
                        if e + 4 > end:
                            return done(5)
                        offs.append(e)
                        e += 4
                    elif el == -1:
                        offs.append(-1)
                    else:
                        return done(4)
                k = end
        rows.append((dev[0], dev[1], t, offs))


def decode(buf) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(names, code, times, values)`` of a binary COPY stream of ``(timestamptz, text[,
    real[]])`` rows, in the stream's order: the distinct texts (device ids) sorted, object[k];
    each row's index into them, int64[n]; Unix microseconds, int64[n]; float64[n, width]."""
    b = np.frombuffer(buf, np.uint8)
    if bytes(b[:len(_SIGNATURE)]) != _SIGNATURE:
        raise ValueError(f"decode: {ERRORS[1]}")
    dev_off, dev_len, t_off, v_off, code = copy_fields(b)
    if code:
        raise ValueError(f"decode: {ERRORS[code]}")
    n = len(dev_off)
    longest = int(dev_len.max()) if n else 0
    if longest:
        pos = np.arange(longest)
        raw = np.where(pos < dev_len[:, None], b[np.minimum(dev_off[:, None] + pos, len(b) - 1)], 0)
        names, inverse = np.unique(raw.astype(np.uint8).view(f"S{longest}").ravel(), return_inverse=True)
        names = np.array([x.decode() for x in names], dtype=object)
        inverse = inverse.ravel().astype(np.int64)
    else:
        names, inverse = np.array([""] if n else [], dtype=object), np.zeros(n, np.int64)
    times = b[t_off[:, None] + np.arange(8)].view(">i8").ravel().astype(np.int64) + PG_EPOCH_US
    have = v_off >= 0
    X = b[np.where(have, v_off, 0)[:, :, None] + np.arange(4)].view(">f4")[..., 0].astype(np.float64)
    X[~have] = np.nan
    return names, inverse, times, X
