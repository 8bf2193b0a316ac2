-- Detection results and the service side: anomalies, asset health and risk, service orders
-- with their status history, downtime and repairs, detector checkpoints.

CREATE TABLE anomalies (
    id          bigserial PRIMARY KEY,
    time        timestamptz NOT NULL,          -- first reading of the episode
    asset_id    text NOT NULL REFERENCES assets ON DELETE CASCADE,
    sensor      text,                          -- NULL: multivariate
    detector    text NOT NULL,
    score       real NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}',
    UNIQUE (asset_id, time, detector, sensor)
);
CREATE INDEX anomalies_time_idx ON anomalies (time DESC);

-- Latest health per asset and failure mode (risk in [0, 1]).
CREATE TABLE asset_health (
    asset_id      text NOT NULL REFERENCES assets ON DELETE CASCADE,
    mode          text NOT NULL,
    updated_at    timestamptz NOT NULL,       -- telemetry time of the assessment
    health        real NOT NULL,              -- 1 = as new, 0 = failed
    risk          real NOT NULL,              -- probability of failure within the horizon
    rul_h         real,                       -- predicted remaining useful life (hours)
    detail        jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (asset_id, mode)
);

CREATE TABLE service_orders (
    order_id        bigserial PRIMARY KEY,
    asset_id        text NOT NULL REFERENCES assets ON DELETE CASCADE,
    mode            text NOT NULL,             -- failure mode the order addresses
    kind            text NOT NULL CHECK (kind IN ('predictive', 'preventive', 'corrective')),
    status          text NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'scheduled', 'in_progress', 'completed', 'cancelled')),
    priority        smallint NOT NULL CHECK (priority BETWEEN 1 AND 5),   -- 1 = most urgent
    sla_tier        text REFERENCES sla_tiers,
    risk            real,
    predicted_failure_at timestamptz,
    predicted_mttr_h real,
    respond_by      timestamptz,
    opened_at       timestamptz NOT NULL,      -- telemetry (simulated) time
    closed_at       timestamptz,
    first_time_fix  boolean,
    detail          jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now()
);
-- Never two live orders for the same fault.
CREATE UNIQUE INDEX service_orders_live_idx ON service_orders (asset_id, mode)
    WHERE status IN ('open', 'scheduled', 'in_progress');
CREATE INDEX service_orders_status_idx ON service_orders (status, priority, respond_by);

CREATE TABLE service_order_history (
    id          bigserial PRIMARY KEY,
    order_id    bigint NOT NULL REFERENCES service_orders ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT now(),
    status      text NOT NULL,
    actor       text NOT NULL DEFAULT 'system',
    note        text NOT NULL DEFAULT ''
);
CREATE INDEX service_order_history_order_idx ON service_order_history (order_id, at);

-- The asset was down (not producing) from started_at to ended_at (NULL: still down).
CREATE TABLE downtime (
    id          bigserial PRIMARY KEY,
    asset_id    text NOT NULL REFERENCES assets ON DELETE CASCADE,
    mode        text,
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz,
    planned     boolean NOT NULL DEFAULT false,
    UNIQUE (asset_id, started_at),
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);

CREATE TABLE repairs (
    id          bigserial PRIMARY KEY,
    asset_id    text NOT NULL REFERENCES assets ON DELETE CASCADE,
    mode        text NOT NULL,
    order_id    bigint REFERENCES service_orders ON DELETE SET NULL,
    kind        text NOT NULL DEFAULT 'corrective' CHECK (kind IN ('predictive', 'preventive', 'corrective')),
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    first_time_fix boolean NOT NULL DEFAULT true,
    detail      jsonb NOT NULL DEFAULT '{}',
    UNIQUE (asset_id, started_at),
    CHECK (finished_at >= started_at)
);

-- Serialized detector state, so a restarted detector continues without re-warming.
CREATE TABLE detector_checkpoints (
    name        text PRIMARY KEY,
    saved_at    timestamptz NOT NULL DEFAULT now(),
    position    jsonb NOT NULL DEFAULT '{}',   -- where in the telemetry stream the state is
    state       bytea NOT NULL
);
