-- Fitted repair-time models (detection.mttr): the newest row is the one in force. Written by
-- `prognos train` and, at most hourly, by the detection service; read by the API. `model` is
-- the pickled detection.mttr.MttrModel; `summary` what it was fitted on (repairs, censored
-- repairs, calibration size, route per model and failure mode).
CREATE TABLE mttr_models (
    id          bigserial PRIMARY KEY,
    fitted_at   timestamptz NOT NULL DEFAULT now(),
    as_of       timestamptz,                   -- history up to this time (platform clock)
    repairs     integer NOT NULL,
    summary     jsonb NOT NULL DEFAULT '{}',
    model       bytea NOT NULL
);
