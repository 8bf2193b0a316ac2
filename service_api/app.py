"""The FastAPI application: ``create_app(settings)``.

One psycopg ``ConnectionPool`` per app, opened in the lifespan and waited for (a wrong DSN
fails at start-up, not at the first request). Routers live in ``service_api.routes``, one per
resource, under ``/api/v1``; ``/health`` needs no token; ``/`` is the planner page;
``/api/v1/docs`` (Swagger UI) and ``/api/v1/redoc`` are served from the installed package's
files, offline. The lifespan also runs the webhook dispatcher (``webhooks.dispatcher``) unless
``PROGNOS_WEBHOOK_DISPATCH=false``. Every error has one body shape (``service_api.errors``).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from psycopg_pool import ConnectionPool

from prognos.config import Settings, get_settings
from prognos.logs import event
from service_api import docs, errors
from service_api.routes import (
    assets,
    duty_changes,
    export,
    fleet_incidents,
    health,
    ingest_stats,
    mttr,
    predictions,
    schedule,
    service_figures,
    service_orders,
    sla,
    sla_calendars,
    sla_clocks,
    tokens,
    uptime,
    webhooks,
)
from service_api.throttle import AuthThrottle
from webhooks.dispatcher import Dispatcher

STATIC = Path(__file__).parent / "static"
API_PREFIX = "/api/v1"
STATEMENT_TIMEOUT_MS = 15_000

log = logging.getLogger("prognos.service_api")


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
        # requests wait for a connection here (in the loop), not in worker threads: deps.db_slot
        app.state.db_slots = asyncio.Semaphore(settings.db_pool_max)
        dispatcher = Dispatcher(settings).start() if settings.webhook_dispatch else None
        event(log, "api_started", pool_max=settings.db_pool_max,
              webhook_dispatch=settings.webhook_dispatch)
        try:
            yield
        finally:
            if dispatcher is not None:
                dispatcher.stop()
            app.state.pool.close()
            event(log, "api_stopped")

    app = FastAPI(
        title="Prognos service API",
        version="1.0.0",
        summary="Predicted work orders, asset health, availability, MTTR and SLA standing "
        "for field service planners.",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.auth_throttle = AuthThrottle(settings.auth_fail_limit, settings.auth_fail_window_s)

    api = APIRouter(prefix=API_PREFIX, responses=errors.ERROR_RESPONSES)
    for module in (service_orders, assets, duty_changes, predictions, uptime, mttr, sla, sla_clocks, sla_calendars,
                   fleet_incidents, service_figures, ingest_stats, schedule, tokens, webhooks, export):
        api.include_router(module.router)
    api.include_router(tokens.me_router)
    app.include_router(api)
    app.include_router(health.router)
    app.include_router(docs.router(app.openapi_url, API_PREFIX))
    errors.install(app)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount(docs.ASSETS_URL, StaticFiles(directory=docs.ASSETS), name="docs-assets")

    @app.get("/", include_in_schema=False)
    def planner_page():
        return FileResponse(STATIC / "index.html")

    return app
