"""The planner: approved orders and technicians' shifts in, routed visits and unfit orders (with
the reason) out. Pure computation on plain records; ``scheduling.service`` reads them from the
database and writes the plan, the closed-loop benchmark feeds them from its simulated clock.

Model (what a field service dispatcher expects):

- **Vehicles.** Each technician-day shift in the horizon is one route from the technician's home
  base back to it, inside the shift (travel counts as working time).
- **Hard constraints.** Skills (product model and failure mode at the required level), territory
  (the technician's region is the site's), shifts, pins (a pinned order is required and goes to
  its technician, at its time when one is given).
- **Windows.** A visit may start from the horizon start; its deadline is the SLA response target
  (``respond_by``) and, for a predicted failure, the predicted failure time minus the repair time.
  Each order is offered as mutually exclusive optional visits, one per slot of the horizon
  (three a day, ``SLOT_HOURS``; the deadline's slot split at the deadline): on time doubles the
  prize; from the deadline's day on (and for an order without a deadline) each day later takes
  a quarter off (``DAY_DISCOUNT``), each later slot of a day 5% (``SLOT_DISCOUNT``). A late
  visit beats none, an on-time one beats a late one, work due today goes first in the day and
  overdue work is not put off to save travel.
- **Any day before the deadline's day will do.** A visit whose deadline falls on a later day
  (a preventive visit due next week, a bronze-tier response target three days out) is worth
  the same on every day before that day but for ``EARLY_KM_PER_DAY`` a day, so the solver picks
  its day and technician by travel: it goes with other work at the same site or nearby (a
  technician already there does it) instead of on a trip of its own. On the deadline's day
  the slot discounts put urgent work first, as above.
- **Objective.** Travel distance minus prizes, plus a change penalty. The prize is set by
  priority, three times larger per priority step (``PRIZE_KM``, 1,000 km for priority 5: any
  visit that fits is worth its travel), so that priority comes first and
  travel second; an order whose prize does not pay for the detour or that does not fit in any
  shift stays unscheduled with a reason. Re-planning charges ``CHANGE_PENALTY_KM`` for moving an
  order away from the technician it was planned for.
- **Shifts.** A route may run up to ``OVERTIME_H`` past the shift's end at a cost
  (``OVERTIME_KM_PER_H``), as dispatchers allow a job to be finished.
- **Service time.** The order's predicted repair time (hours), as the caller gives it; a repair
  longer than ``MAX_VISIT_H`` is booked as that much (it continues the next day).
- **Travel.** Great-circle distance times ``ROAD_FACTOR`` at ``SPEED_KMH``: stated assumptions, as
  no road network is available offline.

The parameters are product settings chosen by reasoning, not fitted: ``ROAD_FACTOR`` 1.3 is the
usual circuity of road networks, 50 km/h a mixed urban/regional average, the prize ladder makes one
order of a priority worth three of the next. ``EARLY_KM_PER_DAY`` 20 km: a visit waits a day when
that saves more than 20 km (a trip of its own is 50-100 km, home and back, in a territory of
this size), and is still done early rather than late when nothing is saved.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from scheduling.solver import BIG, Job, Problem, Vehicle, solve

ROAD_FACTOR = 1.3
SPEED_KMH = 50.0
PRIZE_KM = {1: 81000.0, 2: 27000.0, 3: 9000.0, 4: 3000.0, 5: 1000.0}
CHANGE_PENALTY_KM = 30.0
PATIENCE = 20_000            # solver iterations without improvement before a plan stops early
OVERTIME_H = 4.0            # a route may run this far past the shift's end...
OVERTIME_KM_PER_H = 72.0    # ...at this cost (about an hour and a half of driving per hour)
MAX_VISIT_H = 10.0          # a longer repair is booked as 10 h; the rest continues the next day
DAY_DISCOUNT = 0.25        # a visit a day later is worth a quarter less: as soon as possible first,
SLOT_DISCOUNT = 0.05       # and 5% less per later slot of the day...
SLOT_HOURS = (11, 14)      # ...cut at these hours (UTC)
EARLY_KM_PER_DAY = 20.0    # before a visit's deadline day, a day later costs this much
EARTH_KM = 6371.0088
UNIT_M = 10               # the solver's distance unit: 10 m keeps prizes and penalties in scale
KM = 1000 // UNIT_M


@dataclass(frozen=True)
class Order:
    order_id: int
    model_id: str
    mode: str
    lat: float
    lon: float
    region: str
    priority: int
    service_h: float
    respond_by: datetime | None = None
    predicted_failure_at: datetime | None = None
    skill_level: int = 1
    parts_ready: bool = True


@dataclass(frozen=True)
class Technician:
    technician_id: str
    lat: float
    lon: float
    region: str
    skills: dict            # (model_id, mode) -> level
    shifts: tuple           # ((start, end), ...) datetimes, absences already removed
    origin: tuple | None = None   # (lat, lon) the first shift starts from (a technician mid-route)


@dataclass(frozen=True)
class Pin:
    order_id: int
    technician_id: str
    starts_at: datetime | None = None


@dataclass(frozen=True)
class PlannedVisit:
    order_id: int
    technician_id: str
    seq: int
    arrive_at: datetime
    starts_at: datetime
    ends_at: datetime
    travel_km: float
    travel_min: float
    pinned: bool
    on_time: bool


@dataclass
class Plan:
    horizon_start: datetime
    horizon_end: datetime
    visits: list[PlannedVisit]
    unscheduled: dict[int, str]
    km: float                       # including the drive home
    seconds: float
    solver_seconds: float
    changed: list[int] = field(default_factory=list)
    shifts: list[tuple] = field(default_factory=list)   # (technician_id, start, end, route km, busy h)
    iterations: int = 0             # solver search iterations


def haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance, vectorised.

    >>> round(float(haversine_km(52.52, 13.405, 48.137, 11.575)), 0)
    504.0
    """
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def travel_matrices(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Road distance in ``UNIT_M`` units and travel seconds between all points."""
    km = haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :]) * ROAD_FACTOR
    return np.rint(km * 1000 / UNIT_M).astype(np.int64), np.ceil(km / SPEED_KMH * 3600).astype(np.int64)


def _skill_tag(model_id: str, mode: str, level: int) -> str:
    return f"skill:{model_id}/{mode}:{level}"


def _deadline(o: Order) -> datetime | None:
    d = [o.respond_by] if o.respond_by else []
    if o.predicted_failure_at:
        d.append(o.predicted_failure_at - timedelta(hours=o.service_h))
    return min(d) if d else None


def fit_reasons(orders: list[Order], techs: list[Technician], pins: dict[int, Pin]) -> dict[int, str]:
    """Orders that no route can take, with the reason (checked before solving)."""
    out = {}
    longest = {t.technician_id: max(((e - s).total_seconds() / 3600 for s, e in t.shifts), default=0.0)
               for t in techs}
    by_id = {t.technician_id: t for t in techs}
    for o in orders:
        key = (o.model_id, o.mode)
        pin = pins.get(o.order_id)
        if not o.parts_ready:
            out[o.order_id] = "waiting for parts"
            continue
        if pin is not None:
            t = by_id.get(pin.technician_id)
            if t is None or not t.shifts:
                out[o.order_id] = f"pinned to {pin.technician_id}, who has no shift in the horizon"
            elif t.skills.get(key, 0) < o.skill_level:
                out[o.order_id] = f"pinned to {pin.technician_id}, who lacks {o.model_id}/{o.mode} level {o.skill_level}"
            elif pin.starts_at is not None and not any(
                    s <= pin.starts_at and pin.starts_at + timedelta(hours=o.service_h) <= e for s, e in t.shifts):
                out[o.order_id] = f"pinned time {pin.starts_at.isoformat()} is outside {pin.technician_id}'s shifts"
            continue
        qualified = [t for t in techs if t.skills.get(key, 0) >= o.skill_level]
        if not qualified:
            out[o.order_id] = f"no technician qualified for {o.model_id}/{o.mode} at level {o.skill_level}"
            continue
        local = [t for t in qualified if t.region == o.region]
        if not local:
            out[o.order_id] = f"no technician qualified for {o.model_id}/{o.mode} in territory {o.region}"
            continue
        on_shift = [t for t in local if t.shifts]
        if not on_shift:
            out[o.order_id] = "no qualified technician of the territory is on shift in the horizon"
            continue
        if max(longest[t.technician_id] for t in on_shift) + OVERTIME_H < min(o.service_h, MAX_VISIT_H):
            out[o.order_id] = f"repair ({o.service_h:.1f} h) longer than any qualified technician's shift"
    return out


def pieces(cuts: list[int], discounts: list[float], deadline: int | None) -> list[tuple[int, int, float]]:
    """The windows an order is offered in: one per slot of the horizon (``cuts``: slot boundaries
    in seconds, ``discounts`` each slot's prize discount), the slot of the deadline split at it;
    (start, end, discount).

    >>> pieces([0, 100, 200], [0.0, 0.25], 150)
    [(0, 100, 0.0), (100, 150, 0.25), (150, 200, 0.25)]
    >>> pieces([0, 100, 200], [0.0, 0.25], -5)
    [(0, 100, 0.0), (100, 200, 0.25)]
    """
    out = []
    for (a, b), disc in zip(zip(cuts, cuts[1:]), discounts):
        if deadline is not None and a < deadline < b:
            out += [(a, deadline, disc), (deadline, b, disc)]
        else:
            out.append((a, b, disc))
    return out


def slots(start: datetime, end: datetime) -> tuple[list[int], list[float]]:
    """Slot boundaries (seconds from ``start``) and discounts: ``DAY_DISCOUNT`` per day, plus
    ``SLOT_DISCOUNT`` per slot of the day (cut at ``SLOT_HOURS``).

    >>> from datetime import timezone
    >>> t0 = datetime(2026, 3, 2, 7, tzinfo=timezone.utc)
    >>> slots(t0, t0 + timedelta(hours=24))
    ([0, 14400, 25200, 61200, 86400], [0.0, 0.05, 0.1, 0.25])
    """
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    marks = []
    for d in range((end - midnight).days + 1):
        day = midnight + timedelta(days=d)
        marks.append((day, DAY_DISCOUNT * d))
        marks += [(day + timedelta(hours=h), DAY_DISCOUNT * d + SLOT_DISCOUNT * (k + 1))
                  for k, h in enumerate(SLOT_HOURS)]
    cuts, discounts = [0], []
    disc = 0.0
    for t, dsc in marks:
        if t <= start:
            disc = dsc
            continue
        if t >= end:
            break
        discounts.append(disc)
        cuts.append(int((t - start).total_seconds()))
        disc = dsc
    discounts.append(disc)
    cuts.append(int((end - start).total_seconds()))
    return cuts, discounts


def plan(orders: list[Order], techs: list[Technician], start: datetime, end: datetime, *,
         pins: list[Pin] = (), previous: dict[int, str] | None = None, time_limit: float | None = 10.0,
         seed: int = 0, iterations: int | None = None) -> Plan:
    """Build the schedule for ``[start, end)``. ``previous``: order -> technician of the plan
    being revised (moving an order away costs ``CHANGE_PENALTY_KM``). The solver stops at
    ``time_limit`` seconds or ``iterations`` search iterations, whichever comes first (give only
    ``iterations`` for a plan that does not depend on the machine's speed or load)."""
    t_wall = time.perf_counter()
    pins = {p.order_id: p for p in pins}
    previous = previous or {}
    unfit = fit_reasons(orders, techs, pins)
    todo = [o for o in orders if o.order_id not in unfit]
    shifts = [(t, max(s, start), min(e, end)) for t in techs for s, e in t.shifts
              if min(e, end) > max(s, start)]
    if not todo or not shifts:
        for o in todo:
            unfit[o.order_id] = "no technician is on shift in the horizon"
        return Plan(start, end, [], unfit, 0.0, time.perf_counter() - t_wall, 0.0)

    first = {}
    for k, (t, s, _) in enumerate(shifts):
        if t.origin is not None and (t.technician_id not in first or s < shifts[first[t.technician_id]][1]):
            first[t.technician_id] = k
    origin_of = {k: shifts[k][0].origin for k in first.values()}
    homes = sorted({(t.lat, t.lon) for t, _, _ in shifts} | set(origin_of.values()))
    home_idx = {h: i for i, h in enumerate(homes)}
    lat = np.array([h[0] for h in homes] + [o.lat for o in todo])
    lon = np.array([h[1] for h in homes] + [o.lon for o in todo])
    dist, dur = travel_matrices(lat, lon)

    def sec(t: datetime) -> int:
        return int((t - start).total_seconds())

    vehicles = []
    for k, (t, s, e) in enumerate(shifts):
        tags = {f"region:{t.region}", f"tech:{t.technician_id}"}
        tags |= {_skill_tag(m, md, lv) for (m, md), level in t.skills.items() for lv in range(1, int(level) + 1)}
        h = home_idx[(t.lat, t.lon)]
        o = home_idx[origin_of[k]] if k in origin_of else h
        vehicles.append(Vehicle(start=o, end=h, tw_early=sec(s), tw_late=sec(e) + int(OVERTIME_H * 3600),
                                tags=frozenset(tags), group=t.technician_id, shift_duration=sec(e) - sec(s),
                                max_overtime=int(OVERTIME_H * 3600),
                                overtime_cost=max(1, round(OVERTIME_KM_PER_H * KM / 3600))))
    jobs, job_order, job_on_time = [], [], []
    horizon = sec(end)
    cuts, discounts = slots(start, end)
    day0 = int((start - start.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds())
    for k, o in enumerate(todo):
        point = len(homes) + k
        service = int(round(min(o.service_h, MAX_VISIT_H) * 3600))
        base = int(PRIZE_KM.get(int(o.priority), PRIZE_KM[5]) * KM)
        pin = pins.get(o.order_id)
        pref = previous.get(o.order_id)
        common = dict(point=point, service=service, preferred_group=pref,
                      change_penalty=int(CHANGE_PENALTY_KM * KM) if pref else 0)
        if pin is not None:
            w = (sec(pin.starts_at), sec(pin.starts_at)) if pin.starts_at else (0, horizon)
            jobs.append(Job(**common, tw_early=w[0], tw_late=w[1], required=True,
                            requires=frozenset({f"tech:{pin.technician_id}"})))
            job_order.append(o)
            dl = _deadline(o)
            job_on_time.append(dl is None or (pin.starts_at or start) <= dl)
            continue
        req = frozenset({f"region:{o.region}", _skill_tag(o.model_id, o.mode, int(o.skill_level))})
        dl = _deadline(o)
        dls = None if dl is None else sec(dl)
        for a, b, disc in pieces(cuts, discounts, dls):
            on_time = dls is None or b <= dls
            day = (a + day0) // 86400
            if on_time and dls is not None and day < (dls + day0) // 86400:     # before its deadline's day
                prize = int(base * 2 - EARLY_KM_PER_DAY * KM * day)
            else:
                prize = int(base * (2 if on_time else 1) * max(0.05, 1 - disc))
            jobs.append(Job(**common, tw_early=a, tw_late=b, required=False, requires=req,
                            prize=prize,
                            alternatives=o.order_id))
            job_order.append(o)
            job_on_time.append(on_time)

    problem = Problem(distance=dist, duration=dur, jobs=jobs, vehicles=vehicles)
    res = solve(problem, time_limit=time_limit, seed=seed, patience=PATIENCE, max_iterations=iterations)
    visits, served, shift_rows = [], set(), []
    for r in res.routes:
        t, s, e = shifts[r.vehicle]
        busy = 0.0
        prev = vehicles[r.vehicle].start
        for seq, v in enumerate(r.visits):
            o = job_order[v.job]
            pt = jobs[v.job].point
            visits.append(PlannedVisit(
                order_id=o.order_id, technician_id=t.technician_id, seq=seq,
                arrive_at=start + timedelta(seconds=v.arrival), starts_at=start + timedelta(seconds=v.start),
                ends_at=start + timedelta(seconds=v.end), travel_km=float(dist[prev, pt]) / KM,
                travel_min=float(dur[prev, pt]) / 60, pinned=o.order_id in pins, on_time=job_on_time[v.job]))
            busy += (v.end - v.start + dur[prev, pt]) / 3600
            prev = pt
            served.add(o.order_id)
        if r.visits:
            busy += dur[prev, vehicles[r.vehicle].end] / 3600
        shift_rows.append((t.technician_id, s, e, r.distance / KM, busy))
    for o in todo:
        if o.order_id not in served:
            unfit[o.order_id] = ("did not fit: the qualified technicians' shifts in the horizon are "
                                 "taken by higher-priority or closer work")
    changed = [v.order_id for v in visits if v.order_id in previous and previous[v.order_id] != v.technician_id]
    return Plan(start, end, sorted(visits, key=lambda v: (v.technician_id, v.starts_at)), unfit,
                km=res.distance / KM, seconds=time.perf_counter() - t_wall, solver_seconds=res.seconds,
                changed=changed, shifts=shift_rows, iterations=res.iterations)


def working_days(start: datetime, days: int, workdays=(1, 2, 3, 4, 5)) -> datetime:
    """End of the ``days``-th working day from ``start`` (today counts if it is a working day).

    >>> from datetime import timezone
    >>> working_days(datetime(2026, 12, 4, 10, tzinfo=timezone.utc), 2).isoformat()  # Friday
    '2026-12-08T00:00:00+00:00'
    """
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    n = 0
    while True:
        if day.isoweekday() in workdays:
            n += 1
            if n == days:
                return day + timedelta(days=1)
        day += timedelta(days=1)
