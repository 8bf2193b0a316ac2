"""SLA calendars (definitions: ``orders/sla.py``): each contract tier's clocks run on a
calendar's working hours in its time zone, skipping its public holidays. Staff read them; an
admin sets the time zone, working days and hours, and the holidays."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from orders import sla
from service_api.deps import CurrentUser, DbConn, requires
from service_api.models import SlaCalendarPublic, SlaCalendarUpdate

router = APIRouter(prefix="/sla/calendars", tags=["sla"])


@router.get("", response_model=list[SlaCalendarPublic])
def list_calendars(conn: DbConn, user: CurrentUser):
    """Every SLA calendar with its holidays."""
    return sla.describe(conn)


@router.patch("/{calendar}", response_model=SlaCalendarPublic, dependencies=[requires("calendars")])
def update_calendar(conn: DbConn, user: CurrentUser, calendar: str, body: SlaCalendarUpdate):
    """Change a calendar (admin). Clocks are recomputed from each order's history, so the
    change applies to every order of the tiers on it, deadlines already passed included."""
    try:
        cal = sla.update_calendar(
            conn, calendar, tz=body.timezone, weekdays=body.weekdays, start_h=body.day_start_h,
            end_h=body.day_end_h,
            holidays=[(h.day, h.name) for h in body.holidays] if body.holidays is not None else None)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    if cal is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no SLA calendar {calendar!r}")
    return next(c for c in sla.describe(conn) if c["calendar"] == cal.name)
