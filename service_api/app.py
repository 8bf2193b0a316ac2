"""The FastAPI application: ``create_app(settings)``.

One psycopg ``ConnectionPool`` per app, opened in the lifespan and waited for (a wrong DSN
fails at start-up, not at the first request). Routers live in ``service_api.routes``, one per
resource, under ``/api/v1``; ``/health`` needs no token; ``/`` is the planner page.
"""

from __future__ import annotations

import logging
import math
from contextlib import asynccontextmanager
from pathlib import Path

import psycopg
from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from psycopg_pool import ConnectionPool, PoolTimeout

from prognos.config import Settings, get_settings
from prognos.logs import event
from service_api.routes import (
    assets,
    health,
    ingest_stats,
    mttr,
    predictions,
    service_orders,
    sla,
    tokens,
    uptime,
)

STATIC = Path(__file__).parent / "static"
API_PREFIX = "/api/v1"
STATEMENT_TIMEOUT_MS = 15_000

log = logging.getLogger("prognos.service_api")


def json_safe(value):
    """``value`` with non-finite floats replaced by their names, so it encodes as strict JSON.

    >>> json_safe({"input": [float("inf"), 1.5, {"x": float("nan")}]})
    {'input': ['inf', 1.5, {'x': 'nan'}]}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def open_pool(settings: Settings, *, timeout: float = 10.0) -> ConnectionPool:
    """A started pool on ``settings.dsn``; sessions in UTC with a statement timeout, planning
    every statement with its actual parameters."""
    pool = ConnectionPool(
        settings.dsn,
        min_size=min(2, settings.db_pool_max),
        max_size=settings.db_pool_max,
        # psycopg prepares a query after 5 runs; Postgres then may switch to a generic plan,
        # which for the optional filters ("%(x)s IS NULL OR col = %(x)s") estimates 1 row and
        # picks nested loops (measured: 5x slower fleet list). Always plan with the values.
        kwargs={"options": f"-c TimeZone=UTC -c statement_timeout={STATEMENT_TIMEOUT_MS} "
                           "-c plan_cache_mode=force_custom_plan"},
        name="service_api",
        open=False,
    )
    pool.open(wait=True, timeout=timeout)
    return pool


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.pool = open_pool(settings)
        event(log, "api_started", pool_max=settings.db_pool_max)
        try:
            yield
        finally:
            app.state.pool.close()
            event(log, "api_stopped")

    app = FastAPI(
        title="Prognos service API",
        version="1.0.0",
        summary="Predicted work orders, asset health, availability, MTTR and SLA standing "
        "for field service planners.",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.settings = settings

    api = APIRouter(prefix=API_PREFIX)
    for module in (service_orders, assets, predictions, uptime, mttr, sla, ingest_stats, tokens):
        api.include_router(module.router)
    api.include_router(tokens.me_router)
    app.include_router(api)
    app.include_router(health.router)

    @app.exception_handler(RequestValidationError)
    async def validation_failed(request: Request, exc: RequestValidationError):
        # FastAPI's own handler echoes the input, which fails to encode for NaN/Infinity
        # (Python's json accepts them in requests): a 500 for what is a client error.
        return JSONResponse({"detail": json_safe(jsonable_encoder(exc.errors()))}, status_code=422)

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(PoolTimeout)
    async def database_unavailable(request: Request, exc: Exception):
        event(log, "db_unavailable", level=logging.WARNING, path=request.url.path,
              error=type(exc).__name__, detail=str(exc)[:200])
        return JSONResponse({"detail": "database unavailable or too slow; retry"},
                            status_code=503, headers={"Retry-After": "5"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def planner_page():
        return FileResponse(STATIC / "index.html")

    return app
