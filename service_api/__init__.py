"""Prognos service API: FastAPI for field service planners, and the planner web page.

- :func:`service_api.app.create_app` builds the app (one psycopg pool, routers under
  ``/api/v1``, ``/health``, the page at ``/``, OpenAPI at ``/api/v1/openapi.json``);
- :mod:`service_api.auth`: bearer tokens stored hashed, roles viewer / planner / technician /
  admin; ``create_token(conn, name, role) -> str``;
- :mod:`service_api.cli`: ``prognos api [--host --port]`` and ``prognos api tokens ...``.
"""
