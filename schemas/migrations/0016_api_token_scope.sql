-- API tokens: a 'customer' role bound to one customer (sees only that customer's assets,
-- orders, uptime, MTTR and SLA), and when each token was last used.
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check
    CHECK (role IN ('viewer', 'planner', 'technician', 'admin', 'customer'));
ALTER TABLE api_tokens ADD COLUMN customer_id text REFERENCES customers ON DELETE CASCADE;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_customer_scope
    CHECK ((role = 'customer') = (customer_id IS NOT NULL));
ALTER TABLE api_tokens ADD COLUMN last_used_at timestamptz;
