-- The direction in which a failure mode moves its sensors: sensor -> signed weight (the
-- expected deviation at full damage in units of the sensor's noise, scaled so the largest
-- |weight| is 1). Detection matches anomalies against it, so a temperature falling after a
-- cleaning is not read as fouling. Empty: direction unknown (magnitudes only).
-- intermittent: the mode shows as spikes (electrical faults) rather than a drift.
ALTER TABLE failure_modes
    ADD COLUMN signature jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN intermittent boolean NOT NULL DEFAULT false;
