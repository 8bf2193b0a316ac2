-- Alarm levels learned by `prognos train` from the platform's own history (owner:
-- detection/levels.py): per product model, the evidence memory (tau_h), the matched-filter score
-- an anomaly needs to count for a mode (min_mode_score), and per failure mode the evidence at
-- which detection opens a predictive order (levels: mode -> {level, failures, caught, orders,
-- true_orders, learned}). A model without a row, or a mode whose entry says learned = false
-- (too few failures in the history), uses ServiceConfig's defaults (the manufacturer-safe levels).
CREATE TABLE alarm_levels (
    model_id        text PRIMARY KEY REFERENCES product_models ON DELETE CASCADE,
    tau_h           real NOT NULL CHECK (tau_h > 0),
    min_mode_score  real NOT NULL CHECK (min_mode_score > 0),
    levels          jsonb NOT NULL DEFAULT '{}',
    detail          jsonb NOT NULL DEFAULT '{}',   -- rule, targets, history span, grid searched
    trained_at      timestamptz NOT NULL DEFAULT now()
);
