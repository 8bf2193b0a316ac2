"""Parts: what each failure mode's repair needs, stock per depot, restocks on their way.

Owner of ``depots``, ``parts``, ``mode_parts``, ``mode_requirements``, ``part_stock``,
``part_allocations`` and ``part_restocks``.

An order draws its parts from the depot of its site's region (the nearest depot when the region
has none). :func:`allocate` sets parts aside for orders in priority order; an order whose parts
are not in stock gets a ``waiting`` allocation and a restock is ordered (arriving after the
part's lead time). :func:`receive_due` books restocks that have arrived; the next
:func:`allocate` turns waiting allocations into reservations. Parts are consumed when the
visit is completed (:func:`consume`) and go back to stock when an order is rejected or
cancelled (:func:`release`); :func:`settle`, at the start of every plan, does both for the
orders that closed since the last one (the scheduler reads order state, it never writes it
outside ``orders.state``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import psycopg

from scheduling.planner import Order, haversine_km


def add_depot(conn, depot_id: str, name: str, region: str, lat: float, lon: float) -> None:
    conn.execute("""INSERT INTO depots (depot_id, name, region, lat, lon) VALUES (%s, %s, %s, %s, %s)
                    ON CONFLICT (depot_id) DO UPDATE SET name = EXCLUDED.name, region = EXCLUDED.region,
                        lat = EXCLUDED.lat, lon = EXCLUDED.lon""", (depot_id, name, region, lat, lon))


def add_part(conn, part_id: str, name: str, restock_lead_h: float) -> None:
    conn.execute("""INSERT INTO parts (part_id, name, restock_lead_h) VALUES (%s, %s, %s)
                    ON CONFLICT (part_id) DO UPDATE SET name = EXCLUDED.name,
                        restock_lead_h = EXCLUDED.restock_lead_h""", (part_id, name, restock_lead_h))


def set_mode_part(conn, model_id: str, mode: str, part_id: str, quantity: int = 1) -> None:
    conn.execute("""INSERT INTO mode_parts (model_id, mode, part_id, quantity) VALUES (%s, %s, %s, %s)
                    ON CONFLICT (model_id, mode, part_id) DO UPDATE SET quantity = EXCLUDED.quantity""",
                 (model_id, mode, part_id, quantity))


def set_requirement(conn, model_id: str, mode: str, skill_level: int) -> None:
    conn.execute("""INSERT INTO mode_requirements (model_id, mode, skill_level) VALUES (%s, %s, %s)
                    ON CONFLICT (model_id, mode) DO UPDATE SET skill_level = EXCLUDED.skill_level""",
                 (model_id, mode, skill_level))


def set_stock(conn, depot_id: str, part_id: str, on_hand: int, reorder_level: int = 0) -> None:
    conn.execute("""INSERT INTO part_stock (depot_id, part_id, on_hand, reorder_level) VALUES (%s, %s, %s, %s)
                    ON CONFLICT (depot_id, part_id) DO UPDATE SET on_hand = EXCLUDED.on_hand,
                        reorder_level = EXCLUDED.reorder_level""", (depot_id, part_id, on_hand, reorder_level))


def stock(conn, depot_id: str, part_id: str) -> int:
    row = conn.execute("SELECT on_hand FROM part_stock WHERE depot_id = %s AND part_id = %s",
                       (depot_id, part_id)).fetchone()
    return int(row[0]) if row else 0


def receive_due(conn: psycopg.Connection, now: datetime) -> int:
    """Book every restock that has arrived by ``now``; returns how many."""
    rows = conn.execute(
        """UPDATE part_restocks SET received_at = arrives_at
           WHERE received_at IS NULL AND arrives_at <= %s RETURNING depot_id, part_id, quantity""",
        (now,)).fetchall()
    for depot_id, part_id, qty in rows:
        conn.execute("""INSERT INTO part_stock (depot_id, part_id, on_hand) VALUES (%s, %s, %s)
                        ON CONFLICT (depot_id, part_id) DO UPDATE SET on_hand = part_stock.on_hand + EXCLUDED.on_hand""",
                     (depot_id, part_id, qty))
    return len(rows)


def _depots(conn) -> list[tuple[str, str, float, float]]:
    return conn.execute("SELECT depot_id, region, lat, lon FROM depots ORDER BY depot_id").fetchall()


def depot_for(depots, need: Order) -> str | None:
    """The depot of the site's region, else the nearest one."""
    if not depots:
        return None
    local = [d for d in depots if d[1] == need.region]
    cands = local or depots
    km = haversine_km(need.lat, need.lon, np.array([d[2] for d in cands]), np.array([d[3] for d in cands]))
    return cands[int(np.argmin(km))][0]


def allocate(conn: psycopg.Connection, needs: list[Order], now: datetime) -> set[int]:
    """Set parts aside for ``needs`` (in the order given: callers pass priority order); returns
    the orders that wait for parts. Orders whose mode needs no part never wait."""
    if not needs:
        return set()
    depots = _depots(conn)
    bom: dict = {}
    for model_id, mode, part_id, qty, lead in conn.execute(
            """SELECT mp.model_id, mp.mode, mp.part_id, mp.quantity, p.restock_lead_h
               FROM mode_parts mp JOIN parts p USING (part_id)"""):
        bom.setdefault((model_id, mode), []).append((part_id, int(qty), float(lead)))
    have: dict = {}
    for oid, part_id, state in conn.execute(
            "SELECT order_id, part_id, state FROM part_allocations WHERE order_id = ANY(%s)",
            ([n.order_id for n in needs],)):
        have[(oid, part_id)] = state
    waiting = set()
    for n in needs:
        items = bom.get((n.model_id, n.mode), [])
        if not items:
            continue
        depot = depot_for(depots, n)
        if depot is None:
            raise ValueError("parts are defined but no depot exists: add a depot first")
        for part_id, qty, lead in items:
            state = have.get((n.order_id, part_id))
            if state in ("reserved", "consumed"):
                continue
            took = conn.execute(
                """UPDATE part_stock SET on_hand = on_hand - %s
                   WHERE depot_id = %s AND part_id = %s AND on_hand >= %s RETURNING on_hand""",
                (qty, depot, part_id, qty)).fetchone()
            if took:
                conn.execute(
                    """INSERT INTO part_allocations (order_id, depot_id, part_id, quantity, state, updated_at)
                       VALUES (%s, %s, %s, %s, 'reserved', %s)
                       ON CONFLICT (order_id, part_id) DO UPDATE SET state = 'reserved', depot_id = EXCLUDED.depot_id,
                           updated_at = EXCLUDED.updated_at""", (n.order_id, depot, part_id, qty, now))
                continue
            waiting.add(n.order_id)
            if state != "waiting":
                conn.execute(
                    """INSERT INTO part_allocations (order_id, depot_id, part_id, quantity, state, updated_at)
                       VALUES (%s, %s, %s, %s, 'waiting', %s)
                       ON CONFLICT (order_id, part_id) DO UPDATE SET state = 'waiting', updated_at = EXCLUDED.updated_at""",
                    (n.order_id, depot, part_id, qty, now))
                conn.execute(
                    """INSERT INTO part_restocks (depot_id, part_id, quantity, ordered_at, arrives_at)
                       VALUES (%s, %s, %s, %s, %s)""", (depot, part_id, qty, now, now + timedelta(hours=lead)))
    return waiting


def waiting_orders(conn) -> set[int]:
    return {r[0] for r in conn.execute("SELECT DISTINCT order_id FROM part_allocations WHERE state = 'waiting'")}


def consume(conn, order_id: int, at: datetime) -> None:
    conn.execute("""UPDATE part_allocations SET state = 'consumed', updated_at = %s
                    WHERE order_id = %s AND state = 'reserved'""", (at, order_id))


def settle(conn: psycopg.Connection, now: datetime) -> dict[str, int]:
    """Consume the parts of orders completed since the last plan and return to stock those of
    orders rejected or cancelled; returns how many orders of each."""
    rows = conn.execute(
        """SELECT DISTINCT a.order_id, o.status FROM part_allocations a
           JOIN service_orders o USING (order_id) JOIN order_statuses s ON s.status = o.status
           WHERE a.state IN ('waiting', 'reserved') AND NOT s.live ORDER BY a.order_id""").fetchall()
    done = {"consumed": 0, "released": 0}
    for order_id, status in rows:
        if status == "completed":
            consume(conn, order_id, now)
            conn.execute("""UPDATE part_allocations SET state = 'released', updated_at = %s
                            WHERE order_id = %s AND state = 'waiting'""", (now, order_id))
            done["consumed"] += 1
        else:
            release(conn, order_id, now)
            done["released"] += 1
    return done


def release(conn, order_id: int, at: datetime) -> None:
    rows = conn.execute("""UPDATE part_allocations SET state = 'released', updated_at = %s
                           WHERE order_id = %s AND state = 'reserved' RETURNING depot_id, part_id, quantity""",
                        (at, order_id)).fetchall()
    for depot_id, part_id, qty in rows:
        conn.execute("UPDATE part_stock SET on_hand = on_hand + %s WHERE depot_id = %s AND part_id = %s",
                     (qty, depot_id, part_id))
    conn.execute("""UPDATE part_allocations SET state = 'released', updated_at = %s
                    WHERE order_id = %s AND state = 'waiting'""", (at, order_id))
