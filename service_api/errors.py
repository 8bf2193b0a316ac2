"""One error body for every error the API returns, and the handlers that produce it.

Every 4xx/5xx under ``/api/v1`` (and ``/health``'s 503 aside) is ``ErrorBody``::

    {"status": 404, "error": "not_found", "detail": "no asset 'X'", "errors": []}

``detail`` is one human-readable sentence; ``errors`` lists the individual problems of a 422
(``loc``, ``msg``, ``type``), empty otherwise. ``ERROR_RESPONSES`` declares them in OpenAPI.

>>> body(404, "no asset 'X'")
{'status': 404, 'error': 'not_found', 'detail': "no asset 'X'", 'errors': []}
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from prognos.logs import event

log = logging.getLogger("prognos.service_api")


class ErrorItem(BaseModel):
    loc: list[str | int] = Field(description="where: ('query', 'limit'), ('body', 'status'), ...")
    msg: str
    type: str


class ErrorBody(BaseModel):
    status: int = Field(description="the HTTP status code")
    error: str = Field(description="the status as a snake_case word: not_found, conflict, ...")
    detail: str = Field(description="what went wrong, for a human")
    errors: list[ErrorItem] = Field(default=[], description="each problem of a 422")


def _word(status: int) -> str:
    if status == 422:  # its phrase differs between Python versions; one stable word
        return "validation_error"
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def body(status: int, detail: str, errors: list[dict] | None = None) -> dict:
    return {"status": status, "error": _word(status), "detail": detail, "errors": errors or []}


def error_response(status: int, detail: str, *, errors: list[dict] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body(status, detail, errors), status_code=status, headers=headers)


def _safe(value: Any) -> Any:
    """The message parts of validation errors as plain JSON (never the raw input, which may
    hold non-finite floats or bytes)."""
    return [{"loc": [x if isinstance(x, (str, int)) else str(x) for x in e.get("loc", ())],
             "msg": str(e.get("msg", "")), "type": str(e.get("type", "value_error"))}
            for e in jsonable_encoder(value, custom_encoder={bytes: repr})]


_DESCRIPTIONS = {
    400: "Bad request", 401: "Missing, invalid, expired or revoked token",
    403: "The token's role may not do this", 404: "Not found (or not visible to this token)",
    409: "Conflicts with the resource's state", 422: "Invalid parameters or body",
    429: "Too many failed authentications from this address; see Retry-After",
    503: "Database unavailable or too slow; see Retry-After",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in _DESCRIPTIONS.items()
}


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into an ``ErrorBody``."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_failed(request: Request, exc: RequestValidationError):
        errors = _safe(exc.errors())
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return error_response(422, detail or "invalid request", errors=errors)

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(PoolTimeout)
    async def database_unavailable(request: Request, exc: Exception):
        event(log, "db_unavailable", level=logging.WARNING, path=request.url.path,
              error=type(exc).__name__, detail=str(exc)[:200])
        return error_response(503, "database unavailable or too slow; retry",
                              headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        event(log, "api_error", level=logging.ERROR, path=request.url.path,
              error=type(exc).__name__, detail=str(exc)[:500])
        return error_response(500, "internal error; it has been logged")
