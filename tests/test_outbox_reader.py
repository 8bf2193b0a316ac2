"""The outbox reader on real TimescaleDB: every committed row exactly once, in time order, and a
read bounded by its time span (a read's keys probe every telemetry chunk inside its bounds)."""

from __future__ import annotations

import numpy as np

from detection.reader import OutboxReader
from tests.detection_fixtures import STEP, make_fleet, past_start, readings, write


def test_reads_are_bounded_by_their_time_span_and_lose_nothing(db):
    fleet = make_fleet(db, "rdr", n_assets=2)
    head = OutboxReader.head(db)
    start = past_start(2)
    V = readings(2, start, 96, degrade={})
    write(db, fleet["devices"], start, V, outbox=True, batch_steps=12)     # 8 batches of 55 minutes
    bounded = OutboxReader(position=head, max_span_s=3600.0)
    reads = []
    while (b := bounded.read(db)) is not None:
        reads.append(b)
    assert len(reads) == 8                                  # two batches would span 115 minutes
    times = np.concatenate([b.times for b in reads])
    assert len(times) == 96 * 2 and len(set(zip(np.concatenate([b.device_ids for b in reads]), times))) == 96 * 2
    assert (np.diff(times.astype(np.int64)) >= 0).all()     # in time order across reads
    assert all(b.times[-1] - b.times[0] <= np.timedelta64(3600, "s") for b in reads)
    default = OutboxReader(position=head)                   # one chunk interval (6 h) at most
    first, second = default.read(db), default.read(db)
    assert (len(first.device_ids), len(second.device_ids)) == (6 * 12 * 2, 2 * 12 * 2)
    assert first.times[-1] - first.times[0] == np.timedelta64(int(71 * STEP.total_seconds()), "s")
    assert default.read(db) is None


def test_a_read_takes_only_its_own_batches_rows_when_writers_interleave(db):
    """Two writers storing the same devices' readings interleaved in time: each read returns
    exactly the rows of the batches it took, though the other batch's rows lie in its span."""
    fleet = make_fleet(db, "rdi", n_assets=2)
    head = OutboxReader.head(db)
    start = past_start(1)
    V = readings(2, start, 24, degrade={})
    devices = fleet["devices"]
    for parity in (0, 1):                                  # writer 0: even steps, writer 1: odd
        keys_d, keys_t = [], []
        with db.cursor() as cur, cur.copy("COPY telemetry (time, device_id, vals) FROM STDIN") as cp:
            for k in range(parity, 24, 2):
                ts = start + k * STEP
                for j, d in enumerate(devices):
                    cp.write_row((ts, d, [float(x) for x in V[k, j]]))
                    keys_d.append(d)
                    keys_t.append(ts)
        db.execute("INSERT INTO ingest_batches (device_ids, times, min_time, max_time) VALUES (%s, %s, %s, %s)",
                   (keys_d, keys_t, min(keys_t), max(keys_t)))
    reader = OutboxReader(position=head, max_batches=1)
    for parity in (0, 1):
        b = reader.read(db)
        steps = ((b.times - np.datetime64(start.replace(tzinfo=None), "us")) // np.timedelta64(300, "s")).astype(int)
        assert sorted(set(steps.tolist())) == list(range(parity, 24, 2))
        assert len(b.device_ids) == 12 * 2 and sorted(set(b.device_ids)) == sorted(devices)
        assert (np.diff(b.times.astype(np.int64)) >= 0).all()
        k = steps[0]
        assert np.allclose(np.asarray(b.vals[0], dtype=float), V[k, devices.index(b.device_ids[0])], atol=1e-4)
    assert reader.read(db) is None
