-- Installed base: product models and their sensors, failure modes, customers, sites, assets,
-- SLA tiers and service contracts, devices and their (hashed) MQTT credentials.

CREATE TABLE sla_tiers (
    tier        text PRIMARY KEY,             -- 'platinum', 'gold', 'silver', 'bronze'
    rank        integer NOT NULL UNIQUE,      -- 1 = most demanding
    response_h  real NOT NULL CHECK (response_h > 0),   -- a technician on site within
    restore_h   real NOT NULL CHECK (restore_h > 0),    -- the asset back in service within
    description text NOT NULL DEFAULT ''
);
INSERT INTO sla_tiers (tier, rank, response_h, restore_h, description) VALUES
    ('platinum', 1, 4, 8, '24x7, 4 h response, 8 h restore'),
    ('gold', 2, 8, 24, '24x7, 8 h response, next-day restore'),
    ('silver', 3, 24, 48, 'business days, next-day response'),
    ('bronze', 4, 72, 120, 'best effort');

CREATE TABLE product_models (
    model_id    text PRIMARY KEY,             -- e.g. 'PMP-200'
    name        text NOT NULL,
    category    text NOT NULL,                -- 'pump', 'compressor', 'chiller', ...
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The sensors of a model, in the order of telemetry.vals for that model's devices.
CREATE TABLE sensors (
    model_id    text NOT NULL REFERENCES product_models ON DELETE CASCADE,
    position    smallint NOT NULL CHECK (position >= 0),
    name        text NOT NULL,                -- 'vibration_rms', 'bearing_temp', ...
    unit        text NOT NULL,                -- 'mm/s', 'degC', 'A', 'bar', ...
    min_value   double precision NOT NULL,    -- physically plausible range (contract)
    max_value   double precision NOT NULL,
    PRIMARY KEY (model_id, position),
    UNIQUE (model_id, name),
    CHECK (min_value < max_value)
);

CREATE TABLE failure_modes (
    model_id    text NOT NULL REFERENCES product_models ON DELETE CASCADE,
    mode        text NOT NULL,                -- 'bearing_wear', 'seal_leak', 'fouling', 'electrical', 'sudden'
    description text NOT NULL DEFAULT '',
    sensors     text[] NOT NULL DEFAULT '{}', -- sensors the mechanism moves (empty: no precursor)
    predictable boolean NOT NULL DEFAULT true,
    mttr_h      real NOT NULL CHECK (mttr_h > 0),   -- nominal repair time (prior for MTTR)
    PRIMARY KEY (model_id, mode)
);

CREATE TABLE customers (
    customer_id text PRIMARY KEY,
    name        text NOT NULL
);

CREATE TABLE sites (
    site_id     text PRIMARY KEY,
    customer_id text NOT NULL REFERENCES customers,
    name        text NOT NULL,
    region      text NOT NULL DEFAULT ''
);

CREATE TABLE assets (
    asset_id        text PRIMARY KEY,
    serial          text NOT NULL UNIQUE,
    model_id        text NOT NULL REFERENCES product_models,
    customer_id     text NOT NULL REFERENCES customers,
    site_id         text NOT NULL REFERENCES sites,
    install_date    date NOT NULL,
    lifecycle_stage text NOT NULL DEFAULT 'in_service'
        CHECK (lifecycle_stage IN ('commissioning', 'in_service', 'end_of_life', 'decommissioned')),
    warranty_end    date,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assets_model_idx ON assets (model_id);

CREATE TABLE service_contracts (
    contract_id text PRIMARY KEY,
    asset_id    text NOT NULL REFERENCES assets ON DELETE CASCADE,
    tier        text NOT NULL REFERENCES sla_tiers,
    starts_on   date NOT NULL,
    ends_on     date NOT NULL,
    CHECK (starts_on <= ends_on)
);
CREATE INDEX service_contracts_asset_idx ON service_contracts (asset_id, ends_on DESC);

-- One device (the telemetry gateway) per asset; its MQTT username is the device id.
CREATE TABLE devices (
    device_id     text PRIMARY KEY CHECK (device_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    asset_id      text NOT NULL UNIQUE REFERENCES assets ON DELETE CASCADE,
    password_hash text NOT NULL,              -- Mosquitto $7$ PBKDF2-SHA512; never the secret
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
