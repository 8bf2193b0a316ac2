"""Liveness and database check, without authentication (for load balancers and probes)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/health", responses={503: {
    "description": "the database does not answer within 2 s",
    "content": {"application/json": {"example": {"status": "degraded", "db": "error",
                                                 "error": "PoolTimeout"}}}}})
def health(request: Request):
    """200 ``{"status": "ok", "db": "ok", "db_ms": ...}`` when a pooled connection answers
    ``SELECT 1`` within 2 s; 503 with the reason otherwise."""
    t0 = time.perf_counter()
    try:
        with request.app.state.pool.connection(timeout=2.0) as conn:
            conn.execute("SELECT 1").fetchone()
    except Exception as exc:  # any failure means not ready: report it, never raise
        return JSONResponse(
            {"status": "degraded", "db": "error", "error": type(exc).__name__}, status_code=503
        )
    return {"status": "ok", "db": "ok", "db_ms": round((time.perf_counter() - t0) * 1000, 3)}
