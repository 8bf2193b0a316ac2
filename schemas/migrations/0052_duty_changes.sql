-- A confirmed change of an asset's duty (a new process, load profile, set point or
-- installation): the readings that follow are its new normal, not a fault. Written only by
-- orders/duty.py (a planner's action through the service API); detection reads the records
-- in id order (orders.feedback.rebaselines) and re-baselines every sensor of the asset, the
-- path a planner's false alarm takes for the sensors of one failure mode.
CREATE TABLE duty_changes (
    id          bigserial PRIMARY KEY,
    asset_id    text NOT NULL REFERENCES assets ON DELETE CASCADE,
    at          timestamptz NOT NULL,                 -- when the new duty began
    reason      text NOT NULL CHECK (length(btrim(reason)) BETWEEN 1 AND 500),
    actor       text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX duty_changes_asset ON duty_changes (asset_id, at DESC);
