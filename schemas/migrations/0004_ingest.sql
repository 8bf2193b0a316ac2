-- Ingest: per-worker counters, 1-minute and 1-hour rollups of telemetry and their dirty marks.
--
-- Rollups: this TimescaleDB build is the Apache-licensed one (SHOW timescaledb.license =
-- 'apache'), where continuous aggregates are unavailable, so the rollups are our own tables,
-- maintained incrementally by ingest (ingest/rollup.py): every ingest batch marks the minutes
-- it stored rows in (rollup_dirty, same transaction as the rows); the rollup job recomputes
-- marked minutes once they are closed, and the hours those minutes fall in.
-- Per element i of vals: cnt[i] non-null values, avg_vals/min_vals/max_vals[i] over them
-- (NULL where cnt[i] = 0). n = readings in the bucket.

CREATE TABLE ingest_stats (
    worker         text PRIMARY KEY,          -- 'ingest-0', 'ingest-1', ...
    received       bigint NOT NULL DEFAULT 0, -- MQTT messages taken from the broker
    stored         bigint NOT NULL DEFAULT 0, -- telemetry rows committed
    duplicates     bigint NOT NULL DEFAULT 0, -- readings already stored (redelivery, retries)
    dead_lettered  bigint NOT NULL DEFAULT 0, -- messages refused into dead_letters
    events         bigint NOT NULL DEFAULT 0, -- state events stored
    lag_s          real NOT NULL DEFAULT 0,   -- receive -> commit of the last batch (oldest msg)
    queue_depth    integer NOT NULL DEFAULT 0,
    started_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE telemetry_1m (
    device_id  text NOT NULL,
    bucket     timestamptz NOT NULL,
    n          integer NOT NULL,
    cnt        integer[] NOT NULL,
    avg_vals   real[] NOT NULL,
    min_vals   real[] NOT NULL,
    max_vals   real[] NOT NULL,
    PRIMARY KEY (device_id, bucket)
);
SELECT create_hypertable('telemetry_1m', 'bucket', chunk_time_interval => interval '7 days');

CREATE TABLE telemetry_1h (
    device_id  text NOT NULL,
    bucket     timestamptz NOT NULL,
    n          integer NOT NULL,
    cnt        integer[] NOT NULL,
    avg_vals   real[] NOT NULL,
    min_vals   real[] NOT NULL,
    max_vals   real[] NOT NULL,
    PRIMARY KEY (device_id, bucket)
);
SELECT create_hypertable('telemetry_1h', 'bucket', chunk_time_interval => interval '90 days');

-- Minutes holding rows not yet in telemetry_1m (per worker: no lock contention between them).
CREATE TABLE rollup_dirty (
    bucket  timestamptz NOT NULL,
    worker  text NOT NULL,
    PRIMARY KEY (bucket, worker)
);
