"""Technicians: who they are, where they start, what they can repair, when they work.

Owner of ``technicians``, ``technician_skills`` and ``technician_absences``. The shift calendar
is weekly (ISO weekdays and daily hours, UTC); absences cut the shifts they overlap.

>>> from datetime import datetime, timezone
>>> day = datetime(2026, 12, 7, tzinfo=timezone.utc)          # a Monday
>>> cut_absences([(day.replace(hour=8), day.replace(hour=17))],
...              [(day.replace(hour=12), day.replace(hour=13))])[1][0].hour
13
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import psycopg

from scheduling.planner import Technician

MIN_SHIFT_H = 1.0      # shift pieces shorter than this after cutting absences are dropped


def add(conn: psycopg.Connection, technician_id: str, name: str, region: str, home: tuple[float, float], *,
        depot_id: str | None = None, workdays=(1, 2, 3, 4, 5), shift_start: time = time(8),
        shift_end: time = time(17)) -> None:
    """Create or update a technician (idempotent)."""
    conn.execute(
        """INSERT INTO technicians (technician_id, name, region, depot_id, home_lat, home_lon, workdays,
                                    shift_start, shift_end)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (technician_id) DO UPDATE SET name = EXCLUDED.name, region = EXCLUDED.region,
               depot_id = EXCLUDED.depot_id, home_lat = EXCLUDED.home_lat, home_lon = EXCLUDED.home_lon,
               workdays = EXCLUDED.workdays, shift_start = EXCLUDED.shift_start, shift_end = EXCLUDED.shift_end""",
        (technician_id, name, region, depot_id, home[0], home[1], list(workdays), shift_start, shift_end))


def set_skill(conn: psycopg.Connection, technician_id: str, model_id: str, mode: str, level: int) -> None:
    conn.execute(
        """INSERT INTO technician_skills (technician_id, model_id, mode, level) VALUES (%s, %s, %s, %s)
           ON CONFLICT (technician_id, model_id, mode) DO UPDATE SET level = EXCLUDED.level""",
        (technician_id, model_id, mode, level))


def add_absence(conn: psycopg.Connection, technician_id: str, starts_at: datetime, ends_at: datetime,
                reason: str = "") -> int:
    return conn.execute(
        """INSERT INTO technician_absences (technician_id, starts_at, ends_at, reason)
           VALUES (%s, %s, %s, %s) RETURNING id""", (technician_id, starts_at, ends_at, reason)).fetchone()[0]


def cut_absences(shifts: list[tuple[datetime, datetime]], absences: list[tuple[datetime, datetime]]):
    """Shift pieces left after removing the absences (pieces under ``MIN_SHIFT_H`` dropped)."""
    out = []
    for s, e in shifts:
        pieces = [(s, e)]
        for a0, a1 in absences:
            nxt = []
            for p0, p1 in pieces:
                if a1 <= p0 or a0 >= p1:
                    nxt.append((p0, p1))
                    continue
                if a0 > p0:
                    nxt.append((p0, a0))
                if a1 < p1:
                    nxt.append((a1, p1))
            pieces = nxt
        out += [(p0, p1) for p0, p1 in pieces if (p1 - p0).total_seconds() >= MIN_SHIFT_H * 3600]
    return out


def calendar_shifts(workdays, shift_start: time, shift_end: time, start: datetime, end: datetime):
    """The shifts of a weekly calendar that overlap ``[start, end)``, clipped to it."""
    day = start.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    out = []
    while day < end:
        if day.isoweekday() in workdays:
            s = datetime.combine(day.date(), shift_start, timezone.utc)
            e = datetime.combine(day.date(), shift_end, timezone.utc)
            s, e = max(s, start), min(e, end)
            if e > s:
                out.append((s, e))
        day += timedelta(days=1)
    return out


def load(conn: psycopg.Connection, start: datetime, end: datetime, regions: list[str] | None = None
         ) -> list[Technician]:
    """Active technicians (of ``regions``, default all) with their skills and their shifts in
    ``[start, end)``."""
    rows = conn.execute(
        """SELECT technician_id, region, home_lat, home_lon, workdays, shift_start, shift_end
           FROM technicians WHERE active AND (%(r)s::text[] IS NULL OR region = ANY(%(r)s))
           ORDER BY technician_id""", {"r": regions}).fetchall()
    skills: dict = {}
    for tid, model_id, mode, level in conn.execute(
            "SELECT technician_id, model_id, mode, level FROM technician_skills"):
        skills.setdefault(tid, {})[(model_id, mode)] = int(level)
    absences: dict = {}
    for tid, a0, a1 in conn.execute(
            "SELECT technician_id, starts_at, ends_at FROM technician_absences WHERE ends_at > %s AND starts_at < %s",
            (start, end)):
        absences.setdefault(tid, []).append((a0, a1))
    out = []
    for tid, region, lat, lon, workdays, s0, s1 in rows:
        shifts = cut_absences(calendar_shifts(workdays, s0, s1, start, end), absences.get(tid, []))
        out.append(Technician(tid, float(lat), float(lon), region, skills.get(tid, {}), tuple(shifts)))
    return out
