-- Failure-mode signatures learned by `prognos train` from the platform's own history (owner:
-- detection/signatures.py): the anomaly pattern in the hours before failures of a mode, per
-- sensor a signed relative weight (largest |weight| = 1), and the number of failures it was
-- learned from. Detection matches anomalies against it; a mode without one (or with too few
-- failures behind it) falls back to failure_modes.signature, the manufacturer's directions.
-- failure_modes.signature holds those directions only (+1 / -1), no magnitudes.
CREATE TABLE learned_signatures (
    model_id    text NOT NULL,
    mode        text NOT NULL,
    signature   jsonb NOT NULL,                -- sensor -> signed weight in [-1, 1]
    events      integer NOT NULL CHECK (events >= 0),
    detail      jsonb NOT NULL DEFAULT '{}',   -- mean shift per sensor in noise units, its spread, windows
    trained_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_id, mode),
    FOREIGN KEY (model_id, mode) REFERENCES failure_modes ON DELETE CASCADE
);
