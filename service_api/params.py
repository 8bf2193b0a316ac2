"""Query parameter types shared by the routers, validated so that no input reaches the database
in a form it would refuse (NUL bytes, out-of-range integers, naive or absurd times): bad input
is a 422 that says which parameter and why, never a 500.

>>> jan1, jan2 = datetime(2026, 1, 1), datetime(2026, 1, 2)
>>> check_window(jan1, jan2)[1].isoformat()
'2026-01-02T00:00:00+00:00'
>>> try:
...     check_window(jan2, jan1)
... except RequestValidationError as exc:
...     print(exc.errors()[0]["msg"])
'from' must be before 'to'
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated

from fastapi import Query
from fastapi.exceptions import RequestValidationError

# Identifiers (asset, model, site, customer, mode, tier): printable, no control characters.
ID_PATTERN = r"^[^\x00-\x1f\x7f]{1,128}$"

IdQuery = Annotated[str | None, Query(min_length=1, max_length=128, pattern=ID_PATTERN)]
Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="rows to skip")]
TimeQuery = Annotated[datetime | None, Query(description="RFC 3339 time; naive means UTC")]

EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)
MAX_WINDOW = timedelta(days=3660)


def _error(param: str, msg: str, value) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", param), "msg": msg, "input": str(value)}]
    )


def utc(t: datetime | None, param: str) -> datetime | None:
    """``t`` as an aware UTC datetime within 1970..2200 (naive input is taken as UTC)."""
    if t is None:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    try:
        t = t.astimezone(timezone.utc)
    except (OverflowError, ValueError) as exc:
        raise _error(param, f"{param!r} is out of range", t) from exc
    if not EARLIEST <= t <= LATEST:
        raise _error(param, f"{param!r} must be between 1970 and 2200", t)
    return t


def check_window(start: datetime, end: datetime, *, max_span: timedelta = MAX_WINDOW):
    """Validate a [start, end) window; returns it with both ends in UTC."""
    start, end = utc(start, "from"), utc(end, "to")
    if start >= end:
        raise _error("from", "'from' must be before 'to'", start.isoformat())
    if end - start > max_span:
        raise _error("from", f"the window may span at most {max_span.days} days", start.isoformat())
    return start, end


def resolve_window(
    start: datetime | None, end: datetime | None, default_span: timedelta, now: datetime
) -> tuple[datetime, datetime]:
    """Fill a missing end with ``now`` and a missing start with ``end - default_span``."""
    end = utc(end, "to") or now
    start = utc(start, "from") or max(EARLIEST, end - default_span)
    return check_window(start, end)
