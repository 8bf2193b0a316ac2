"""Prognos service API: FastAPI for field service planners, and the planner web page.

- :func:`service_api.app.create_app` builds the app (one psycopg pool, routers under
  ``/api/v1``, ``/health``, the page at ``/``, OpenAPI at ``/api/v1/openapi.json``, Swagger UI
  at ``/api/v1/docs`` and ReDoc at ``/api/v1/redoc``, both served offline);
- :mod:`service_api.auth`: bearer tokens stored hashed, expiring by default
  (``PROGNOS_API_TOKEN_DAYS``, 90), last use recorded; roles viewer / planner / technician /
  admin, and customer (bound to one customer: sees only its assets, orders and figures);
  ``create_token(conn, name, role, customer_id=None) -> str``;
- :mod:`service_api.throttle`: failed authentications per client address (429 + Retry-After);
- :mod:`service_api.errors`: one error body ``{status, error, detail, errors}`` for every error;
- ``/api/v1/webhooks`` (admin) subscribes URLs to order events (see the ``webhooks`` package);
  ``/api/v1/export/{orders,uptime,sla}.csv`` stream CSV;
- :mod:`service_api.cli`: ``prognos api [--host --port]`` and ``prognos api tokens ...``.
"""
