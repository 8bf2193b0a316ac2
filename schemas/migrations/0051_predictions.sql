-- The trained predictor's output reaches the planner (written by detection/service.py):
-- per asset and failure mode, the predicted time to failure with its 10th-90th percentile
-- interval (hours from updated_at) and the probability of a failure of that mode within the
-- predictor's horizon; per order, the interval of the predicted failure time.
ALTER TABLE asset_health
    ADD COLUMN rul_lo_h    real,
    ADD COLUMN rul_hi_h    real,
    ADD COLUMN p_fail      real CHECK (p_fail BETWEEN 0 AND 1),
    ADD COLUMN horizon_h   real,
    ADD COLUMN predicted_at timestamptz;
ALTER TABLE service_orders
    ADD COLUMN predicted_failure_lo timestamptz,
    ADD COLUMN predicted_failure_hi timestamptz;
