-- Service order state, defined once: the statuses (with which are live), the reason codes of
-- decisions, and a history row per change with from and to status, actor, reason and time.
-- The old 'open' status becomes 'approved' (a corrective order opens approved; a predictive one
-- opens 'proposed' and is approved by triage or a planner). Written only by orders.state.

CREATE TABLE order_statuses (
    status      text PRIMARY KEY,
    live        boolean NOT NULL,              -- the order still needs work (one per asset and mode)
    position    smallint NOT NULL UNIQUE,      -- display order along the life cycle
    description text NOT NULL DEFAULT ''
);
INSERT INTO order_statuses (status, live, position, description) VALUES
    ('proposed',    true,  1, 'raised by detection, waiting for triage (automatic rule or planner)'),
    ('approved',    true,  2, 'accepted as work to do; a scheduler may plan it'),
    ('scheduled',   true,  3, 'a visit is planned (scheduled_for, assignee)'),
    ('in_progress', true,  4, 'a technician is on site (the response time)'),
    ('on_hold',     true,  5, 'paused: waiting for the customer or for parts (SLA clocks pause)'),
    ('completed',   false, 6, 'the asset is restored (the restore time)'),
    ('rejected',    false, 7, 'a proposal the planner turned down, with a reason'),
    ('cancelled',   false, 8, 'withdrawn before completion, with a reason');

-- Reason codes of decisions and automatic changes (history.reason, service_orders.reason).
CREATE TABLE order_reasons (
    reason      text PRIMARY KEY,
    description text NOT NULL
);
INSERT INTO order_reasons (reason, description) VALUES
    ('opened',            'the order was opened'),
    ('auto_approved',     'triage approved it automatically (tier rule and risk)'),
    ('needs_review',      'triage left it for a planner (tier rule or risk)'),
    ('rate_limited',      'the daily limit of proposals for the customer or site was reached'),
    ('storm',             'part of a fleet incident: many assets of the model crossed risk at once'),
    ('planner',           'a planner decided'),
    ('escalated',         'new evidence made it more urgent'),
    ('planning',          'schedule, assignee or priority changed'),
    ('repaired',          'a repair of the asset and mode was recorded'),
    ('false_alarm',       'no fault found: the detection was wrong'),
    ('not_needed',        'a fault, but no visit is needed now'),
    ('duplicate',         'another order covers it'),
    ('customer_declined', 'the customer declined the visit'),
    ('out_of_contract',   'not covered and not billable'),
    ('waiting_customer',  'on hold: waiting for the customer (access, approval)'),
    ('waiting_parts',     'on hold: waiting for parts'),
    ('resumed',           'the hold ended'),
    ('other',             'see the note');

ALTER TABLE service_orders DROP CONSTRAINT service_orders_status_check;
DROP INDEX service_orders_live_idx;
ALTER TABLE service_orders ALTER COLUMN status SET DEFAULT 'approved';
UPDATE service_orders SET status = 'approved' WHERE status = 'open';
ALTER TABLE service_orders ADD CONSTRAINT service_orders_status_fkey
    FOREIGN KEY (status) REFERENCES order_statuses;
-- Never two live orders for the same fault. The predicate must be immutable, so it names the
-- live statuses; tests/test_orders_state.py checks it agrees with order_statuses.live.
CREATE UNIQUE INDEX service_orders_live_idx ON service_orders (asset_id, mode)
    WHERE status IN ('proposed', 'approved', 'scheduled', 'in_progress', 'on_hold');

ALTER TABLE service_orders
    ADD COLUMN status_at timestamptz,                      -- when the current status began
    ADD COLUMN reason text REFERENCES order_reasons,       -- reason of the last decision
    ADD COLUMN held_from text REFERENCES order_statuses;   -- status an on_hold order resumes to
UPDATE service_orders o SET status_at = coalesce(
    (SELECT max(h.at) FROM service_order_history h WHERE h.order_id = o.order_id), o.opened_at);

ALTER TABLE service_order_history RENAME COLUMN status TO to_status;
UPDATE service_order_history SET to_status = 'approved' WHERE to_status = 'open';
ALTER TABLE service_order_history
    ADD COLUMN from_status text REFERENCES order_statuses,   -- NULL: the order was created
    ADD COLUMN reason text REFERENCES order_reasons,
    ADD CONSTRAINT service_order_history_to_status_fkey FOREIGN KEY (to_status) REFERENCES order_statuses;
ALTER TABLE service_order_history ALTER COLUMN at DROP DEFAULT;
UPDATE service_order_history h SET from_status = p.prev
FROM (SELECT id, lag(to_status) OVER (PARTITION BY order_id ORDER BY at, id) AS prev
      FROM service_order_history) p
WHERE p.id = h.id;
UPDATE service_order_history SET reason = CASE WHEN from_status IS NULL THEN 'opened'
                                               WHEN from_status = to_status THEN 'planning'
                                               ELSE 'planner' END;

-- A repair's first-time fix is the technician's word; a device or an import does not know it
-- (NULL). The figure the planner sees is derived (orders.figures): not fixed if the technician
-- said so or if the same asset and mode needed another repair within 30 days.
ALTER TABLE repairs ALTER COLUMN first_time_fix DROP NOT NULL, ALTER COLUMN first_time_fix DROP DEFAULT;
