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
