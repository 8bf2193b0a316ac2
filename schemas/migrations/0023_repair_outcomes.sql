-- First-time fix, judged (orders.figures): a repair fixed the fault on the first visit unless the
-- technician said it did not, or the same asset and failure mode needed another repair within
-- 30 days. A repair is judged once the technician said no, a repeat came, or 30 days have
-- passed by ``at`` (the caller's clock); until then its outcome is NULL (not yet known).
CREATE FUNCTION repair_outcomes(at timestamptz)
RETURNS TABLE (repair_id bigint, asset_id text, mode text, order_id bigint, kind text,
               finished_at timestamptz, technician_said boolean, repeated boolean,
               first_time_fix boolean)
LANGUAGE sql STABLE AS $$
    SELECT r.id, r.asset_id, r.mode, r.order_id, r.kind, r.finished_at, r.first_time_fix, x.repeated,
           CASE WHEN r.first_time_fix IS FALSE OR x.repeated THEN false
                WHEN r.finished_at + interval '30 days' <= at THEN true END
    FROM repairs r
    CROSS JOIN LATERAL (
        SELECT EXISTS (SELECT 1 FROM repairs n
                       WHERE n.asset_id = r.asset_id AND n.mode = r.mode AND n.id <> r.id
                         AND n.started_at >= r.finished_at
                         AND n.started_at <= least(r.finished_at + interval '30 days', at)) AS repeated) x
    WHERE r.finished_at <= at
$$;
CREATE INDEX repairs_asset_mode_start_idx ON repairs (asset_id, mode, started_at);
