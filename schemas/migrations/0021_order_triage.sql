-- Triage of predictive proposals (orders.triage): per contract tier the risk at which a proposal
-- is approved without a planner, daily limits per customer and site, and the storm guard that
-- raises one fleet incident when many assets of one product model cross risk at once.
-- The values are service policy a planner sets, not fitted: the defaults below are a starting
-- point (the top tiers trust detection's threshold, the lower ones and assets without a contract
-- wait for a planner).

ALTER TABLE sla_tiers
    ADD COLUMN auto_approve_risk real CHECK (auto_approve_risk BETWEEN 0 AND 1);  -- NULL: a planner decides
UPDATE sla_tiers SET auto_approve_risk = CASE tier WHEN 'platinum' THEN 0.9 WHEN 'gold' THEN 0.9
                                                   WHEN 'silver' THEN 0.95 END;

CREATE TABLE triage_settings (
    id                      boolean PRIMARY KEY DEFAULT true CHECK (id),   -- one row
    no_contract_auto_approve_risk real CHECK (no_contract_auto_approve_risk BETWEEN 0 AND 1),
    customer_daily_limit    integer CHECK (customer_daily_limit > 0),  -- automatic approvals per customer in 24 h
    site_daily_limit        integer CHECK (site_daily_limit > 0),      -- ... per site in 24 h
    storm_share             real NOT NULL DEFAULT 0.2 CHECK (storm_share > 0 AND storm_share <= 1),
    storm_window_h          real NOT NULL DEFAULT 1 CHECK (storm_window_h > 0),
    storm_min_assets        integer NOT NULL DEFAULT 5 CHECK (storm_min_assets > 1)
);
INSERT INTO triage_settings (no_contract_auto_approve_risk, customer_daily_limit, site_daily_limit)
VALUES (NULL, 20, 10);

-- More than storm_share of a product model's in-service fleet crossing risk within
-- storm_window_h: one incident (a data, firmware or supply problem?) instead of one order per
-- asset. Its orders stay proposed, linked to it, until a planner confirms or dismisses it.
CREATE TABLE fleet_incidents (
    incident_id  bigserial PRIMARY KEY,
    model_id     text NOT NULL REFERENCES product_models ON DELETE CASCADE,
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'confirmed', 'dismissed')),
    opened_at    timestamptz NOT NULL,            -- order clock (telemetry time)
    window_h     real NOT NULL,
    assets       integer NOT NULL,                -- assets that crossed within the window
    fleet_size   integer NOT NULL,
    modes        text[] NOT NULL DEFAULT '{}',
    resolved_at  timestamptz,
    resolved_by  text,
    note         text NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX fleet_incidents_open_idx ON fleet_incidents (model_id) WHERE status = 'open';

ALTER TABLE service_orders ADD COLUMN fleet_incident_id bigint REFERENCES fleet_incidents ON DELETE SET NULL;
CREATE INDEX service_orders_incident_idx ON service_orders (fleet_incident_id) WHERE fleet_incident_id IS NOT NULL;
CREATE INDEX service_order_history_reason_idx ON service_order_history (reason, id);
