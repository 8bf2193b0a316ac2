"""FastAPI dependencies: a database connection from the pool, the current caller from the
bearer token, and role checks.

Use them as annotated parameters::

    @router.get("/things")
    def list_things(conn: DbConn, user: CurrentUser) -> ...

    @router.post("/things", dependencies=[requires("create_order")])
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import ConnectionPool

from prognos.config import Settings
from prognos.logs import event
from service_api.auth import Principal, authenticate
from service_api.throttle import AuthThrottle

log = logging.getLogger("prognos.service_api")

bearer = HTTPBearer(auto_error=False, description="An API token: `prognos api tokens create`")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def db_slot(request: Request) -> AsyncIterator[None]:
    """Wait, in the event loop, until one of the pool's connections is free for this request.

    Without it, more concurrent requests than worker threads (40) deadlock: every thread blocks
    in ``pool.connection()`` while the requests that hold the connections wait for a thread to
    run their route, until the pool times out (503s; found by the 50-planner benchmark)."""
    async with request.app.state.db_slots:
        yield


def get_conn(
    request: Request, _slot: Annotated[None, Depends(db_slot, scope="function")]
) -> Iterator[psycopg.Connection]:
    """One pooled connection per request; committed when the request succeeds, else rolled back."""
    pool: ConnectionPool = request.app.state.pool
    with pool.connection() as conn:
        yield conn


# scope="function": the connection is committed and returned to the pool when the route
# function returns, BEFORE the response is sent. With the default ("request") the commit came
# after the response, so a client's next request could read the state before its own change
# (found by the browser tests: the page re-read the queue and still saw the old status).
DbConn = Annotated[psycopg.Connection, Depends(get_conn, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def client_address(request: Request) -> str:
    """The peer address (behind a reverse proxy, run uvicorn with --proxy-headers so that this
    is the client's, not the proxy's)."""
    return request.client.host if request.client else "unknown"


def get_current_user(
    request: Request,
    conn: DbConn,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    throttle: AuthThrottle = request.app.state.auth_throttle
    client = client_address(request)
    wait = throttle.retry_after(client)
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many failed authentications from {client}; retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    if creds is None or creds.scheme.lower() != "bearer":
        throttle.failed(client)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token (Authorization: Bearer prg_...)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    user = authenticate(conn, creds.credentials)
    if user is None:
        throttle.failed(client)
        event(log, "auth_failed", level=logging.WARNING, client=client, path=request.url.path)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid, expired or revoked token",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return user


CurrentUser = Annotated[Principal, Depends(get_current_user)]


def scope(user: Principal, customer: str | None) -> str | None:
    """The customer filter a query must apply: a customer token's own customer whatever was
    asked, else the requested one (None: every customer)."""
    return user.customer_id or customer


def visible(user: Principal, customer_id: str) -> bool:
    """Whether ``user`` may see an object of ``customer_id`` (else the route answers 404)."""
    return user.customer_id is None or user.customer_id == customer_id


def requires(right: str):
    """A dependency that lets through only callers whose role has ``right``."""

    def check(user: CurrentUser) -> Principal:
        if not user.can(right):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"role {user.role!r} may not {right.replace('_', ' ')}"
            )
        return user

    return Depends(check)
