"""Plans: each planner run, its visits, the orders it left out (with the reason), and pins.

Owner of ``plans``, ``plan_visits``, ``plan_unscheduled`` and ``visit_pins``. The latest plan
is the schedule in force.
"""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg.types.json import Jsonb

from scheduling.planner import Pin, Plan


def save(conn: psycopg.Connection, plan: Plan, planned_at: datetime, actor: str, summary: dict,
         regions: list[str] | None = None) -> int:
    plan_id = conn.execute(
        """INSERT INTO plans (planned_at, horizon_start, horizon_end, actor, regions, solver_seconds, km, summary)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING plan_id""",
        (planned_at, plan.horizon_start, plan.horizon_end, actor, regions, plan.solver_seconds, plan.km,
         Jsonb(summary))).fetchone()[0]
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO plan_visits (plan_id, order_id, technician_id, seq, arrive_at, starts_at, ends_at,
                                        travel_km, travel_min, pinned, on_time)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            [(plan_id, v.order_id, v.technician_id, v.seq, v.arrive_at, v.starts_at, v.ends_at, v.travel_km,
              v.travel_min, v.pinned, v.on_time) for v in plan.visits])
        cur.executemany("INSERT INTO plan_unscheduled (plan_id, order_id, reason) VALUES (%s, %s, %s)",
                        [(plan_id, oid, reason) for oid, reason in plan.unscheduled.items()])
    return plan_id


def latest_id(conn) -> int | None:
    row = conn.execute("SELECT max(plan_id) FROM plans").fetchone()
    return row[0]


def assignments(conn, order_ids: list[int]) -> dict[int, str]:
    """order -> technician of its latest planned visit (the plan being revised)."""
    return dict(conn.execute(
        """SELECT DISTINCT ON (order_id) order_id, technician_id FROM plan_visits
           WHERE order_id = ANY(%s) ORDER BY order_id, plan_id DESC""", (order_ids,)))


def pin(conn, order_id: int, technician_id: str, starts_at: datetime | None, pinned_by: str) -> None:
    conn.execute(
        """INSERT INTO visit_pins (order_id, technician_id, starts_at, pinned_by) VALUES (%s, %s, %s, %s)
           ON CONFLICT (order_id) DO UPDATE SET technician_id = EXCLUDED.technician_id,
               starts_at = EXCLUDED.starts_at, pinned_by = EXCLUDED.pinned_by, pinned_at = now()""",
        (order_id, technician_id, starts_at, pinned_by))


def unpin(conn, order_id: int) -> bool:
    return conn.execute("DELETE FROM visit_pins WHERE order_id = %s", (order_id,)).rowcount > 0


def pins(conn, order_ids: list[int]) -> list[Pin]:
    return [Pin(oid, tid, at) for oid, tid, at in conn.execute(
        "SELECT order_id, technician_id, starts_at FROM visit_pins WHERE order_id = ANY(%s)", (order_ids,))]


def read(conn, plan_id: int | None = None) -> dict | None:
    """A plan as the API and the board show it."""
    plan_id = plan_id if plan_id is not None else latest_id(conn)
    if plan_id is None:
        return None
    head = conn.execute(
        """SELECT plan_id, created_at, planned_at, horizon_start, horizon_end, actor, regions, solver_seconds,
                  km, summary
           FROM plans WHERE plan_id = %s""", (plan_id,)).fetchone()
    if head is None:
        return None
    keys = ("plan_id", "created_at", "planned_at", "horizon_start", "horizon_end", "actor", "regions",
            "solver_seconds", "km", "summary")
    out = dict(zip(keys, head))
    out["visits"] = [dict(zip(
        ("order_id", "technician_id", "seq", "arrive_at", "starts_at", "ends_at", "travel_km", "travel_min",
         "pinned", "on_time", "asset_id", "mode", "priority", "site_id", "lat", "lon"), r)) for r in conn.execute(
        """SELECT v.order_id, v.technician_id, v.seq, v.arrive_at, v.starts_at, v.ends_at, v.travel_km,
                  v.travel_min, v.pinned, v.on_time, o.asset_id, o.mode, o.priority, s.site_id, s.lat, s.lon
           FROM plan_visits v JOIN service_orders o USING (order_id)
           JOIN assets a ON a.asset_id = o.asset_id JOIN sites s ON s.site_id = a.site_id
           WHERE v.plan_id = %s ORDER BY v.technician_id, v.starts_at""", (plan_id,))]
    out["unscheduled"] = [dict(zip(("order_id", "reason", "asset_id", "mode", "priority", "site_id", "lat", "lon"), r))
                          for r in conn.execute(
        """SELECT u.order_id, u.reason, o.asset_id, o.mode, o.priority, s.site_id, s.lat, s.lon
           FROM plan_unscheduled u JOIN service_orders o USING (order_id)
           JOIN assets a ON a.asset_id = o.asset_id JOIN sites s ON s.site_id = a.site_id
           WHERE u.plan_id = %s ORDER BY o.priority, u.order_id""", (plan_id,))]
    out["technicians"] = [dict(zip(("technician_id", "name", "region", "home_lat", "home_lon"), r))
                          for r in conn.execute(
        """SELECT technician_id, name, region, home_lat, home_lon FROM technicians
           WHERE active AND (%s::text[] IS NULL OR region = ANY(%s)) ORDER BY technician_id""",
        (out["regions"], out["regions"]))]
    return out
