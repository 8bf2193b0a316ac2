-- Order events for integrations, and outbound webhooks delivered from a database outbox.
--
-- order_events: one row per change of a service order, written by orders/events.py:emit()
-- in the same transaction as the change (so an event exists if and only if the change
-- committed). Its id is the event id receivers use to drop duplicates.
CREATE TABLE order_events (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    type        text NOT NULL CHECK (type ~ '^order\.[a-z_]+$'),
    order_id    bigint NOT NULL,
    payload     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX order_events_order_idx ON order_events (order_id, id);

-- A receiver: a URL, the event types it wants, and the secret its deliveries are signed with.
CREATE TABLE webhook_subscriptions (
    subscription_id bigserial PRIMARY KEY,
    url         text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2000),
    events      text[] NOT NULL CHECK (cardinality(events) > 0),
    secret      text NOT NULL CHECK (length(secret) >= 32),
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz
);

-- The outbox: one row per (subscription, event) to deliver, enqueued with the event;
-- delivered_at set once the receiver answered 2xx; failed_at once retries are used up.
CREATE TABLE webhook_deliveries (
    subscription_id bigint NOT NULL REFERENCES webhook_subscriptions ON DELETE CASCADE,
    event_id    bigint NOT NULL REFERENCES order_events ON DELETE CASCADE,
    attempts    integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_status integer,
    last_error  text,
    delivered_at timestamptz,
    failed_at   timestamptz,
    PRIMARY KEY (subscription_id, event_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
