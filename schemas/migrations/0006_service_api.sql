-- Service API: bearer tokens for field planners, technicians, viewers and admins. Only the
-- SHA-256 of a token is stored; the token itself is shown once, when it is created.

CREATE TABLE api_tokens (
    token_id    bigserial PRIMARY KEY,
    token_hash  text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    role        text NOT NULL CHECK (role IN ('viewer', 'planner', 'technician', 'admin')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX api_tokens_name_idx ON api_tokens (name);

-- The planner queue and the asset drill-down read these often.
CREATE INDEX IF NOT EXISTS service_orders_asset_idx ON service_orders (asset_id, opened_at DESC);
CREATE INDEX IF NOT EXISTS anomalies_asset_time_idx ON anomalies (asset_id, time DESC);
CREATE INDEX IF NOT EXISTS downtime_asset_idx ON downtime (asset_id, started_at DESC);
CREATE INDEX IF NOT EXISTS repairs_asset_idx ON repairs (asset_id, finished_at DESC);
