-- Telemetry: one row per device and reading time; vals follow the model's sensor positions
-- (sensors.position), NULL elements for sensors not in the reading. The unique index is the
-- natural key that makes redelivered readings a no-op.

CREATE TABLE telemetry (
    time      timestamptz NOT NULL,
    device_id text NOT NULL,
    vals      real[] NOT NULL
);
SELECT create_hypertable('telemetry', 'time', chunk_time_interval => interval '6 hours');
CREATE UNIQUE INDEX telemetry_device_time_idx ON telemetry (device_id, time DESC);

-- Device state events from prognos/v1/devices/{id}/state: online, offline (Last Will), fault
-- codes, operator start/stop, repair.
CREATE TABLE device_events (
    time      timestamptz NOT NULL,
    device_id text NOT NULL,
    event     text NOT NULL,
    detail    jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (device_id, time, event)
);

-- Everything ingest refused, with why and the exact bytes.
CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic       text NOT NULL,
    client_id   text,
    reason      text NOT NULL,
    detail      text NOT NULL DEFAULT '',
    payload     bytea NOT NULL
);
CREATE INDEX dead_letters_received_idx ON dead_letters (received_at DESC);

-- Outbox: one row per committed ingest batch, written in the same transaction as its rows,
-- listing the readings it actually stored (duplicates excluded). Detection reads it in
-- batch_id order to see newly committed telemetry exactly once.
CREATE TABLE ingest_batches (
    batch_id     bigserial PRIMARY KEY,
    committed_at timestamptz NOT NULL DEFAULT now(),
    device_ids   text[] NOT NULL,
    times        timestamptz[] NOT NULL,
    min_time     timestamptz,
    max_time     timestamptz,
    CHECK (cardinality(device_ids) = cardinality(times))
);
