"""FastAPI dependencies: a database connection from the pool, the current caller from the
bearer token, and role checks.

Use them as annotated parameters::

    @router.get("/things")
    def list_things(conn: DbConn, user: CurrentUser) -> ...

    @router.post("/things", dependencies=[requires("create_order")])
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import ConnectionPool

from prognos.config import Settings
from service_api.auth import Principal, authenticate

bearer = HTTPBearer(auto_error=False, description="An API token: `prognos api tokens create`")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_conn(request: Request) -> Iterator[psycopg.Connection]:
    """One pooled connection per request; committed when the request succeeds, else rolled back."""
    pool: ConnectionPool = request.app.state.pool
    with pool.connection() as conn:
        yield conn


DbConn = Annotated[psycopg.Connection, Depends(get_conn)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_current_user(
    conn: DbConn,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if creds is None or creds.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token (Authorization: Bearer prg_...)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    user = authenticate(conn, creds.credentials)
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid, expired or revoked token",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return user


CurrentUser = Annotated[Principal, Depends(get_current_user)]


def requires(right: str):
    """A dependency that lets through only callers whose role has ``right``."""

    def check(user: CurrentUser) -> Principal:
        if not user.can(right):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"role {user.role!r} may not {right.replace('_', ' ')}"
            )
        return user

    return Depends(check)
