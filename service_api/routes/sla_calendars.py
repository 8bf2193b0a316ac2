"""SLA calendars (definitions: ``orders/sla.py``): each contract tier's clocks run on a
calendar's working hours in its time zone, skipping its public holidays. Staff read them; an
admin sets the time zone, working days and hours, and the holidays."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from orders import sla
from service_api.deps import CurrentUser, DbConn, requires
from service_api.models import SlaCalendarPublic, SlaCalendarUpdate

router = APIRouter(prefix="/sla/calendars", tags=["sla"])


def _public(conn, cal: sla.Calendar) -> dict:
    desc = conn.execute("SELECT description FROM sla_calendars WHERE calendar = %s", (cal.name,)).fetchone()[0]
    return {"calendar": cal.name, "timezone": cal.tz, "weekdays": list(cal.weekdays), "day_start_h": cal.start_h,
            "day_end_h": cal.end_h, "description": desc,
            "holidays": [{"day": d, "name": n} for d, n in sla.holiday_names(conn, cal.name)]}


@router.get("", response_model=list[SlaCalendarPublic])
def list_calendars(conn: DbConn, user: CurrentUser):
    """Every SLA calendar with its holidays."""
    return [_public(conn, c) for _, c in sorted(sla.calendars(conn).items())]


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
    return _public(conn, cal)
