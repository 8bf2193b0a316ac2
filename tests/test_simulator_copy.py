"""The bulk binary COPY encoder against a plain one-row-at-a-time reference (hypothesis)."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.copy_binary import PG_EPOCH_US
from simulator.copy_binary import encode_rows


def reference_rows(times_us, device_ids, values) -> set[bytes]:
    """Obviously correct: PostgreSQL binary COPY tuple layout, one row at a time."""
    out = set()
    for j, t in enumerate(times_us):
        for i, d in enumerate(device_ids):
            db = d.encode()
            arr = struct.pack(">iiiii", 1, int(bool(np.isnan(values[j, i]).any())), 700,
                              values.shape[2], 1)
            for v in values[j, i]:
                arr += b"\xff\xff\xff\xff" if np.isnan(v) else struct.pack(">if", 4, float(v))
            out.add(struct.pack(">hiqi", 3, 8, int(t) - PG_EPOCH_US, len(db)) + db
                    + struct.pack(">i", len(arr)) + arr)
    return out


def split_rows(body: bytes) -> set[bytes]:
    rows, k = set(), 0
    while k < len(body):
        start = k
        assert struct.unpack(">h", body[k:k + 2])[0] == 3
        k += 2
        for _ in range(3):
            (n,) = struct.unpack(">i", body[k:k + 4])
            k += 4 + max(n, 0)
        rows.add(body[start:k])
    return rows


@settings(max_examples=60, deadline=None)
@given(T=st.integers(1, 6), ids=st.lists(st.text("abcXYZ09-_.", min_size=1, max_size=12),
                                         min_size=1, max_size=5, unique=True),
       S=st.integers(1, 16), seed=st.integers(0, 2**31), nan_p=st.sampled_from([0.0, 0.05, 0.5]))
def test_bulk_encoding_equals_reference(T, ids, S, seed, nan_p):
    rng = np.random.default_rng(seed)
    values = rng.normal(0, 1e3, (T, len(ids), S)).astype(np.float32)
    values[rng.random(values.shape) < nan_p] = np.nan
    times = 1_700_000_000_000_000 + np.arange(T, dtype=np.int64) * 1_500_000
    body = encode_rows(times, ids, values)
    expected = reference_rows(times, ids, values)
    assert len(body) == sum(len(r) for r in expected)
    assert split_rows(body) == expected


def test_shape_mismatch_is_refused():
    import pytest

    with pytest.raises(ValueError):
        encode_rows(np.zeros(2, np.int64), ["a"], np.zeros((3, 1, 2), np.float32))
