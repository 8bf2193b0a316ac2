-- The order rule per product model (owner: detection/prediction/order_rules.py): when the failure
-- predictor's probability of failure within its horizon (and its remaining-life estimate) opens a
-- predictive order in the detection service (detection.prediction.order_rule.OrderRule's fields
-- in `rule`). Chosen by `prognos train` on the model's own history with the selection code
-- benchmarks.backblaze measures (detection.prediction.order_choice): `held_out` holds the chosen
-- rule's held-out figures and how it was chosen, `failures` the history's failures. A model
-- without a row opens predictive orders from detection's evidence only.
CREATE TABLE order_rules (
    model_id          text PRIMARY KEY REFERENCES product_models ON DELETE CASCADE,
    rule              jsonb NOT NULL,
    name              text NOT NULL,
    failures          integer NOT NULL CHECK (failures >= 0),
    runs              integer NOT NULL CHECK (runs >= 1),
    candidates        integer NOT NULL CHECK (candidates >= 1),
    held_out          jsonb NOT NULL DEFAULT '{}',
    predictor_version text,
    chosen_at         timestamptz NOT NULL DEFAULT now()
);
