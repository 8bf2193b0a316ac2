"""Outbound webhooks: order events delivered to subscribed URLs from a database outbox.

- A subscription (``POST /api/v1/webhooks``, admin) names a URL and the event types it wants
  (``order.proposed``, ``order.approved``, ``order.scheduled``, ``order.completed``,
  ``order.sla_warning``, ...; see ``orders.events.TYPES``). Its signing secret is shown once.
- ``orders.events.emit`` writes each event and queues one delivery per matching subscription
  in the same transaction (``webhooks.outbox``): nothing is lost across restarts or crashes.
- The dispatcher (``webhooks.dispatcher``) runs inside ``prognos api`` as a background thread
  (setting ``PROGNOS_WEBHOOK_DISPATCH``, default on); several API processes share the outbox
  safely (``FOR UPDATE SKIP LOCKED``). It POSTs each due delivery; a 2xx marks it delivered,
  anything else (or no answer) retries after ``min(cap, base * 2**attempt)`` seconds with
  full jitter, up to ``PROGNOS_WEBHOOK_MAX_ATTEMPTS``, then the delivery is marked failed.
- Delivery is at least once: a receiver may see an event twice (e.g. the answer was lost) and
  must drop duplicates by the event id.

The request: ``POST`` with a JSON body ``{"id", "type", "at", "order_id", "data"}`` and headers

- ``Prognos-Event-Id``: the event id (also ``id`` in the body), to deduplicate on;
- ``Prognos-Event-Type``: the event type;
- ``Prognos-Signature: t=<unix seconds>,v1=<hex>`` where ``<hex>`` is
  HMAC-SHA256(secret, ``"<t>." + raw body``). Receivers recompute it over the raw bytes,
  compare in constant time and reject stale ``t`` (``webhooks.signing.verify`` does all three).
"""
