"""SLA clocks per order and the probability that an order breaches its restore target.

Each order with a contract tier has two clocks, on the tier's calendar (``sla_calendars``:
24x7 for the top tiers, business days for the lower ones; migration 0022):

- **response**: from the order's start (opened, or approved for a predictive order: a proposal
  is not yet a commitment) until a technician is on site (first ``in_progress``); target the
  tier's ``response_h`` calendar hours;
- **restore**: until the asset is restored (``completed``). A corrective (or preventive)
  order's target is its report (``opened_at``) + the tier's ``restore_h`` calendar hours; a
  predictive order's is its predicted failure time (the promise is to fix it before the
  customer feels it; without a prediction it falls back to the corrective rule).

Time on hold (``on_hold``: waiting for the customer or for parts) does not count: the deadline
moves out by the calendar hours spent on hold. A calendar has its IANA time zone, working
weekdays and hours, and public holidays (``sla_holidays``); an admin changes them with
:func:`update_calendar` (``PATCH /api/v1/sla/calendars/{calendar}``). States: ``not_started`` (response clock of a
proposal), ``in_progress``, ``nearing_breach`` (within the tier's warning time of the
deadline), ``breached``, ``met``, ``paused`` (on hold) and ``cancelled`` (order rejected or
cancelled).

**Breach probability** (restore clock, live orders) = P(restore after the deadline) =
P(R > deadline − arrival), R the repair time's predictive distribution
(:mod:`orders.repair_time`: the MTTR model's quantiles), arrival = the planned visit (``scheduled_for``) or now + the
expected wait (the median time from approval to a technician on site of the tier's orders in
the last 90 days, travel included; the tier's response target while there are fewer than 5),
but never sooner than now + the travel to the site: the travel time of the order's visit in the
latest plan (``plan_visits.travel_min``) when it has one, else ``TRAVEL_H`` = 0.5 h (an
assumption). Work in progress: P(R > deadline − start | R > now − start). The arrival is taken as certain: the probability reflects only
repair-time uncertainty. Everything is computed as of a time ``now`` from the history up to
then, so the same code answers "what did the clock say at t" (the benchmark uses this).

>>> from datetime import datetime, timezone
>>> cal = Calendar("business", "UTC", (1, 2, 3, 4, 5), 8.0, 18.0)
>>> fri = datetime(2026, 3, 6, 16, 0, tzinfo=timezone.utc)       # a Friday, 16:00
>>> cal.add(fri, 4.0).isoformat()                                 # 2 h Friday, 2 h Monday
'2026-03-09T10:00:00+00:00'
>>> cal.between(fri, cal.add(fri, 4.0))
4.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, available_timezones

from psycopg.rows import dict_row

from orders import repair_time
from orders.events import emit

TRAVEL_H = 0.5
WAIT_LOOKBACK = timedelta(days=90)
WAIT_MIN_ORDERS = 5
H = timedelta(hours=1)


@dataclass(frozen=True)
class Calendar:
    name: str
    tz: str
    weekdays: tuple[int, ...]            # ISO: 1 = Monday
    start_h: float
    end_h: float
    holidays: frozenset[date] = frozenset()   # local days without working hours

    @property
    def always(self) -> bool:
        return self.weekdays == (1, 2, 3, 4, 5, 6, 7) and self.start_h == 0 and self.end_h == 24 \
            and not self.holidays

    def _windows(self, t: datetime, backwards: bool = False):
        """Working windows [a, b) in UTC from the local day of ``t`` on (or back)."""
        zone = ZoneInfo(self.tz)
        day = t.astimezone(zone).date()
        step = timedelta(days=-1 if backwards else 1)
        for _ in range(3660):
            if day.isoweekday() in self.weekdays and day not in self.holidays:
                base = datetime(day.year, day.month, day.day, tzinfo=zone)
                yield ((base + timedelta(hours=self.start_h)).astimezone(timezone.utc),
                       (base + timedelta(hours=self.end_h)).astimezone(timezone.utc))
            day += step

    def add(self, t: datetime, hours: float) -> datetime:
        """The time ``hours`` working hours after ``t``."""
        if self.always:
            return t + hours * H
        left = hours
        for a, b in self._windows(t):
            a = max(a, t)
            if b <= a:
                continue
            span = (b - a) / H
            if span >= left:
                return a + left * H
            left -= span
        raise ValueError("calendar has no working time")

    def between(self, a: datetime, b: datetime) -> float:
        """Working hours in [a, b)."""
        if b <= a:
            return 0.0
        if self.always:
            return (b - a) / H
        total = 0.0
        for wa, wb in self._windows(a):
            if wa >= b:
                break
            lo, hi = max(wa, a), min(wb, b)
            if hi > lo:
                total += (hi - lo) / H
        return total


@dataclass
class Clock:
    name: str                       # 'response' or 'restore'
    state: str
    started_at: datetime | None
    deadline: datetime | None
    warn_at: datetime | None
    stopped_at: datetime | None
    paused_h: float                 # calendar hours on hold so far
    hours_left: float | None        # wall hours to the deadline (negative: past it)


@dataclass
class OrderClocks:
    order_id: int
    status: str
    tier: str | None
    response: Clock | None
    restore: Clock | None
    breach_probability: float | None = None
    arrival: datetime | None = None
    repair_median_h: float | None = None
    repair_lo_h: float | None = None     # 10 % quantile of the repair time
    repair_hi_h: float | None = None     # 90 %
    repair_source: str | None = None
    detail: dict = field(default_factory=dict)


def status_at(order: dict, history: list, now: datetime) -> str:
    """The order's status at ``now`` from its history (its current status without history)."""
    past = [to for at, _, to in history if at <= now]
    return past[-1] if past else order["status"]


def _pauses(history: list[tuple[datetime, str | None, str]], until: datetime) -> list[tuple[datetime, datetime]]:
    """On-hold intervals from history rows (at, from_status, to_status), clipped to ``until``."""
    out, since = [], None
    for at, _, to in history:
        if to == "on_hold" and since is None:
            since = at
        elif to != "on_hold" and since is not None:
            out.append((since, min(at, until)))
            since = None
    if since is not None:
        out.append((since, until))
    return [(a, b) for a, b in out if b > a]


def _deadline(cal: Calendar, start: datetime, target_h: float, pauses, warning_h: float | None):
    """Deadline and warning time of a ``target_h`` calendar-hour clock from ``start`` that does
    not count the paused intervals."""
    def when(hours: float) -> datetime:
        t = cal.add(start, hours)
        for _ in range(20):          # paused hours inside [start, t) push t out; iterate to a fixpoint
            paused = sum(cal.between(max(a, start), min(b, t)) for a, b in pauses if b > start and a < t)
            t2 = cal.add(start, hours + paused)
            if t2 == t:
                break
            t = t2
        return t
    deadline = when(target_h)
    warn = when(max(target_h - warning_h, 0.0)) if warning_h else None
    return deadline, warn


def _state(now: datetime, deadline: datetime | None, warn_at: datetime | None, stopped: datetime | None,
           cancelled: bool, paused: bool, started: bool = True) -> str:
    if cancelled and stopped is None:
        return "cancelled"
    if stopped is not None:
        return "met" if deadline is None or stopped <= deadline else "breached"
    if not started:
        return "not_started"
    if deadline is not None and now > deadline:
        return "breached"
    if paused:
        return "paused"
    if warn_at is not None and now >= warn_at:
        return "nearing_breach"
    return "in_progress"


def clocks(order: dict, history: list[tuple[datetime, str | None, str]], tier: dict | None,
           cal: Calendar | None, now: datetime) -> OrderClocks:
    """Both clocks of one order as of ``now`` (pure: the order row, its history rows (at, from,
    to), its tier row and calendar). Only history up to ``now`` counts: the status is the one
    the order had then."""
    status = status_at(order, history, now)
    out = OrderClocks(order["order_id"], status, order.get("sla_tier"), None, None)
    if tier is None or cal is None:
        return out
    end = order.get("closed_at") or now
    end = min(end, now)
    pauses = _pauses([h for h in history if h[0] <= now], end)
    cancelled = status in ("rejected", "cancelled")
    paused = status == "on_hold"
    # response
    if order["kind"] == "predictive":
        start = next((at for at, _, to in history if to == "approved" and at <= now), None)
    else:
        start = order["opened_at"]
    on_site = next((at for at, _, to in history if to == "in_progress" and at <= now), None)
    if on_site is None and status == "completed" and order.get("closed_at") and order["closed_at"] <= now:
        on_site = order["closed_at"]
    if start is None:
        out.response = Clock("response", "cancelled" if cancelled else "not_started", None, None, None, None, 0.0, None)
    else:
        dl, warn = _deadline(cal, start, float(tier["response_h"]), pauses, tier.get("response_warning_h"))
        out.response = Clock("response", _state(now, dl, warn, on_site, cancelled, paused), start, dl, warn, on_site,
                             _paused_h(cal, pauses, start), (dl - now) / H)
    # restore
    restored = order.get("closed_at") if status == "completed" and order.get("closed_at") and order["closed_at"] <= now else None
    start = order["opened_at"]
    if order["kind"] == "predictive" and order.get("predicted_failure_at") is not None:
        paused_wall = sum(((b - a) / H for a, b in pauses), 0.0)
        dl = order["predicted_failure_at"] + paused_wall * H
        w = tier.get("restore_warning_h")
        warn = dl - w * H if w else None
    else:
        dl, warn = _deadline(cal, start, float(tier["restore_h"]), pauses, tier.get("restore_warning_h"))
    out.restore = Clock("restore", _state(now, dl, warn, restored, cancelled, paused), start, dl, warn, restored,
                        _paused_h(cal, pauses, start), (dl - now) / H)
    return out


def _paused_h(cal: Calendar, pauses, start: datetime) -> float:
    return round(sum(cal.between(max(a, start), b) for a, b in pauses if b > start), 3)


def breach_probability(now: datetime, deadline: datetime, rt: repair_time.RepairTime, *,
                       work_started: datetime | None = None, visit_at: datetime | None = None,
                       expected_wait_h: float = 0.0, travel_h: float = TRAVEL_H) -> tuple[float, datetime]:
    """P(restore after ``deadline``) and the assumed arrival (pure)."""
    if work_started is not None:         # on site: what is left of the repair
        elapsed = max((now - work_started) / H, 0.0)
        budget = (deadline - work_started) / H
        s_el = rt.sf(elapsed)
        p = 1.0 if budget <= elapsed else (rt.sf(budget) / s_el if s_el > 0 else 1.0)
        return min(max(p, 0.0), 1.0), work_started
    if visit_at is not None:             # the planned visit, or as soon as a technician can get there
        arrival = max(visit_at, now + travel_h * H)
    else:                                # the tier's usual wait (it includes travel)
        arrival = now + max(expected_wait_h, travel_h) * H
    return rt.sf((deadline - arrival) / H), arrival


# -- database ----------------------------------------------------------------------------------

def calendars(conn) -> dict[str, Calendar]:
    holidays: dict[str, set[date]] = {}
    for cal, day in conn.execute("SELECT calendar, day FROM sla_holidays"):
        holidays.setdefault(cal, set()).add(day)
    return {r[0]: Calendar(r[0], r[1], tuple(sorted(r[2])), float(r[3]), float(r[4]),
                           frozenset(holidays.get(r[0], ()))) for r in conn.execute(
        "SELECT calendar, timezone, weekdays, day_start_h, day_end_h FROM sla_calendars").fetchall()}


def describe(conn) -> list[dict]:
    """Every calendar as the API shows it: its definition, description and named holidays."""
    names: dict[str, list[dict]] = {}
    for cal, day, name in conn.execute("SELECT calendar, day, name FROM sla_holidays ORDER BY calendar, day"):
        names.setdefault(cal, []).append({"day": day, "name": name})
    return [{"calendar": c, "timezone": tz, "weekdays": sorted(wd), "day_start_h": float(a), "day_end_h": float(b),
             "description": desc, "holidays": names.get(c, [])}
            for c, tz, wd, a, b, desc in conn.execute(
                "SELECT calendar, timezone, weekdays, day_start_h, day_end_h, description FROM sla_calendars "
                "ORDER BY calendar")]


def update_calendar(conn, name: str, *, tz: str | None = None, weekdays: list[int] | None = None,
                    start_h: float | None = None, end_h: float | None = None,
                    holidays: list[tuple[date, str]] | None = None) -> Calendar | None:
    """Change calendar ``name`` (what is given; ``holidays`` replaces the list); None if there
    is no such calendar. Raises ValueError for an unknown time zone or an empty working day.
    Clocks are computed from the history on each read, so the change applies to every order
    of the tiers on this calendar, past deadlines included (as when a contract's calendar is
    corrected)."""
    cal = calendars(conn).get(name)
    if cal is None:
        return None
    if tz is not None and tz not in available_timezones():
        raise ValueError(f"unknown time zone {tz!r} (an IANA name such as Europe/Berlin)")
    lo, hi = start_h if start_h is not None else cal.start_h, end_h if end_h is not None else cal.end_h
    lo, hi = round(lo * 60) / 60, round(hi * 60) / 60          # to the minute
    if not 0 <= lo < hi <= 24:
        raise ValueError(f"the working day must satisfy 0 <= start < end <= 24, got {lo:g}-{hi:g}")
    if weekdays is not None and (not weekdays or not set(weekdays) <= set(range(1, 8))):
        raise ValueError("weekdays: one or more ISO weekdays, 1 (Monday) to 7")
    with conn.transaction():
        conn.execute(
            """UPDATE sla_calendars SET timezone = coalesce(%s, timezone), weekdays = coalesce(%s, weekdays),
                   day_start_h = %s, day_end_h = %s WHERE calendar = %s""",
            (tz, sorted(set(weekdays)) if weekdays is not None else None, lo, hi, name))
        if holidays is not None:
            conn.execute("DELETE FROM sla_holidays WHERE calendar = %s", (name,))
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO sla_holidays (calendar, day, name) VALUES (%s, %s, %s)",
                                [(name, d, n) for d, n in dict(holidays).items()])
    return calendars(conn)[name]


def tiers(conn) -> dict[str, dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM sla_tiers")
        return {r["tier"]: r for r in cur.fetchall()}


def expected_wait_h(conn, tier: str, now: datetime) -> float:
    """Median hours from approval (or opening) to a technician on site over the tier's orders
    that got one in the 90 days before ``now``; the tier's response target with fewer than 5."""
    row = conn.execute(
        """SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM s.at - a.at) / 3600)
           FROM service_orders o
           CROSS JOIN LATERAL (SELECT min(at) AS at FROM service_order_history
                               WHERE order_id = o.order_id AND to_status = 'in_progress') s
           CROSS JOIN LATERAL (SELECT coalesce(min(at), o.opened_at) AS at FROM service_order_history
                               WHERE order_id = o.order_id AND to_status = 'approved') a
           WHERE o.sla_tier = %s AND s.at IS NOT NULL AND s.at <= %s AND s.at > %s""",
        (tier, now, now - WAIT_LOOKBACK)).fetchone()
    if row[0] >= WAIT_MIN_ORDERS and row[1] is not None:
        return max(float(row[1]), 0.0)
    return float(conn.execute("SELECT response_h FROM sla_tiers WHERE tier = %s", (tier,)).fetchone()[0])


def planned_travel_h(conn, order_ids: list[int]) -> dict[int, float]:
    """Hours of travel to each order's visit in the latest plan that has one (read from the
    scheduler's ``plan_visits``; orders never planned are absent)."""
    if not order_ids:
        return {}
    return {oid: float(m) / 60.0 for oid, m in conn.execute(
        """SELECT DISTINCT ON (order_id) order_id, travel_min FROM plan_visits
           WHERE order_id = ANY(%s) ORDER BY order_id, plan_id DESC""", (order_ids,))}


def _history(conn, order_ids: list[int]) -> dict[int, list]:
    out: dict[int, list] = {oid: [] for oid in order_ids}
    for oid, at, frm, to in conn.execute(
            "SELECT order_id, at, from_status, to_status FROM service_order_history WHERE order_id = ANY(%s) "
            "ORDER BY order_id, at, id", (order_ids,)).fetchall():
        out[oid].append((at, frm, to))
    return out


def order_clocks(conn, where: str = "TRUE", params: dict | None = None, now: datetime | None = None,
                 with_probability: bool = True, mttr_model=None) -> list[OrderClocks]:
    """Clocks (and, for live orders, the breach probability) of the orders matching ``where``
    (SQL over ``o`` = service_orders, ``a`` = assets) as of ``now``. ``mttr_model``: an MTTR
    model to use instead of the one in force (the benchmark's, fitted before its test period)."""
    now = now or datetime.now(timezone.utc)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT o.*, a.model_id, a.customer_id FROM service_orders o JOIN assets a USING (asset_id) "
                    f"WHERE {where} ORDER BY o.order_id", params or {})
        orders = cur.fetchall()
    if not orders:
        return []
    hist = _history(conn, [o["order_id"] for o in orders])
    tr, cals = tiers(conn), calendars(conn)
    out, pending = [], []
    for o in orders:
        tier = tr.get(o["sla_tier"]) if o["sla_tier"] else None
        c = clocks(o, hist[o["order_id"]], tier, cals.get(tier["calendar"]) if tier else None, now)
        c.detail = {"asset_id": o["asset_id"], "mode": o["mode"], "kind": o["kind"], "priority": o["priority"],
                    "customer_id": o["customer_id"], "model_id": o["model_id"]}
        out.append(c)
        live = c.status in ("proposed", "approved", "scheduled", "in_progress", "on_hold")
        if with_probability and live and c.restore is not None and c.restore.deadline is not None:
            visit = (o["detail"] or {}).get("scheduled_for") if c.status == "scheduled" else None
            visit = datetime.fromisoformat(visit.replace("Z", "+00:00")) if visit else None
            started = c.response.stopped_at if c.status == "in_progress" and c.response else None
            pending.append((c, o, visit, started))
    # the repair-time distributions of all live orders in one model call
    rts = repair_time.for_orders(conn, [(o["asset_id"], o["mode"], o["kind"], started or visit)
                                        for _, o, visit, started in pending], model=mttr_model)
    waits = {t: expected_wait_h(conn, t, now) for t in {o["sla_tier"] for _, o, _, _ in pending}}
    travel = planned_travel_h(conn, [o["order_id"] for _, o, _, _ in pending])
    for (c, o, visit, started), rt in zip(pending, rts):
        p, arrival = breach_probability(now, c.restore.deadline, rt, work_started=started, visit_at=visit,
                                        expected_wait_h=waits[o["sla_tier"]],
                                        travel_h=travel.get(o["order_id"], TRAVEL_H))
        c.breach_probability, c.arrival = round(p, 4), arrival
        c.repair_median_h, c.repair_source = round(rt.median, 3), rt.source
        c.repair_lo_h, c.repair_hi_h = (round(float(x), 3) for x in rt.quantile([0.1, 0.9]))
    return out


def at_risk(conn, now: datetime | None = None, limit: int = 100, **filters) -> list[OrderClocks]:
    """Live orders with a tier, by breach probability (highest first), then restore deadline."""
    where = ["o.status IN (SELECT status FROM order_statuses WHERE live)", "o.sla_tier IS NOT NULL"]
    if filters.get("tier"):
        where.append("o.sla_tier = %(tier)s")
    if filters.get("customer"):
        where.append("a.customer_id = %(customer)s")
    rows = [c for c in order_clocks(conn, " AND ".join(where), filters, now) if c.breach_probability is not None]
    rows.sort(key=lambda c: (-c.breach_probability, c.restore.deadline))
    return rows[:limit]


def sweep(conn, now: datetime | None = None) -> dict:
    """Emit ``order.sla_warning`` / ``order.sla_breached`` once per order and clock when a live
    order's clock reaches nearing_breach / breached at ``now`` (the caller's clock). Returns
    counts."""
    now = now or datetime.now(timezone.utc)
    done = {(r[0], r[1], r[2]) for r in conn.execute(
        """SELECT e.order_id, e.type, e.payload->>'clock' FROM order_events e
           JOIN service_orders o ON o.order_id = e.order_id
           WHERE e.type IN ('order.sla_warning', 'order.sla_breached')
             AND o.status IN (SELECT status FROM order_statuses WHERE live)""").fetchall()}
    counts = {"order.sla_warning": 0, "order.sla_breached": 0}
    for c in order_clocks(conn, "o.status IN (SELECT status FROM order_statuses WHERE live) AND o.sla_tier IS NOT NULL",
                          now=now, with_probability=False):
        for clock in (c.response, c.restore):
            if clock is None or clock.state not in ("nearing_breach", "breached"):
                continue
            types = ["order.sla_warning"] + (["order.sla_breached"] if clock.state == "breached" else [])
            for t in types:
                if (c.order_id, t, clock.name) in done:
                    continue
                emit(conn, t, c.order_id, {"clock": clock.name, "state": clock.state, "at": now.isoformat(),
                                           "deadline": clock.deadline.isoformat(), **c.detail})
                counts[t] += 1
    return counts
