"""Writing installed-base and service rows straight into the database, for the API's tests and
benchmark: product models with sensors and failure modes, customers, sites, assets with
contracts, health, orders, downtime and repairs. Every id carries a caller-given prefix, so
runs sharing one database never collide.

The platform's own data comes from the simulator, ingest and detection; this module exists so
that the API can be tested against hand-computed figures and measured on a large fleet without
running them.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

import psycopg

SENSORS = [
    ("vibration_rms", "mm/s", 0.0, 50.0),
    ("bearing_temp", "degC", -20.0, 150.0),
    ("motor_current", "A", 0.0, 200.0),
    ("outlet_pressure", "bar", 0.0, 40.0),
]
MODES = [
    ("bearing_wear", 6.0, ["vibration_rms", "bearing_temp"], True),
    ("seal_leak", 4.0, ["outlet_pressure"], True),
    ("electrical", 3.0, ["motor_current"], False),
]


def add_model(conn: psycopg.Connection, model_id: str, *, sensors=SENSORS, modes=MODES) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO product_models (model_id, name, category) VALUES (%s, %s, 'pump')",
            (model_id, f"Pump {model_id}"),
        )
        cur.executemany(
            """INSERT INTO sensors (model_id, position, name, unit, min_value, max_value)
               VALUES (%s, %s, %s, %s, %s, %s)""",
            [(model_id, i, *s) for i, s in enumerate(sensors)],
        )
        cur.executemany(
            """INSERT INTO failure_modes (model_id, mode, description, sensors, predictable, mttr_h)
               VALUES (%s, %s, %s, %s, %s, %s)""",
            [(model_id, m, m.replace("_", " "), sens, pred, mttr) for m, mttr, sens, pred in modes],
        )


def add_customer(conn: psycopg.Connection, customer_id: str, sites: list[str]) -> None:
    with conn.cursor() as cur:
        cur.execute("INSERT INTO customers (customer_id, name) VALUES (%s, %s)",
                    (customer_id, f"Customer {customer_id}"))
        cur.executemany(
            "INSERT INTO sites (site_id, customer_id, name, region) VALUES (%s, %s, %s, 'north')",
            [(s, customer_id, f"Site {s}") for s in sites],
        )


def add_asset(
    conn: psycopg.Connection,
    asset_id: str,
    model_id: str,
    customer_id: str,
    site_id: str,
    *,
    tier: str | None = "gold",
    install_date: date = date(2024, 1, 1),
    lifecycle_stage: str = "in_service",
    warranty_end: date | None = None,
    device_id: str | None = None,
) -> None:
    today = date.today()
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO assets (asset_id, serial, model_id, customer_id, site_id, install_date,
                                   lifecycle_stage, warranty_end)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
            (asset_id, f"SN-{asset_id}", model_id, customer_id, site_id, install_date,
             lifecycle_stage, warranty_end),
        )
        if tier:
            cur.execute(
                """INSERT INTO service_contracts (contract_id, asset_id, tier, starts_on, ends_on)
                   VALUES (%s, %s, %s, %s, %s)""",
                (f"C-{asset_id}", asset_id, tier, today - timedelta(days=365),
                 today + timedelta(days=365)),
            )
        if device_id:
            cur.execute(
                "INSERT INTO devices (device_id, asset_id, password_hash) VALUES (%s, %s, 'x')",
                (device_id, asset_id),
            )


def add_small_fleet(conn: psycopg.Connection, model_id: str, customer_id: str, assets: list[str],
                    *, site_id: str | None = None, **asset_kw) -> str:
    """A product model, a customer with one site and ``assets`` of that model there; returns
    the site id (default ``{customer_id}-S``)."""
    site_id = site_id or f"{customer_id}-S"
    add_model(conn, model_id)
    add_customer(conn, customer_id, [site_id])
    for a in assets:
        add_asset(conn, a, model_id, customer_id, site_id, **asset_kw)
    return site_id


def add_health(conn, asset_id: str, mode: str, *, health: float, risk: float,
               rul_h: float | None = None, at: datetime | None = None) -> None:
    conn.execute(
        """INSERT INTO asset_health (asset_id, mode, updated_at, health, risk, rul_h)
           VALUES (%s, %s, %s, %s, %s, %s)
           ON CONFLICT (asset_id, mode) DO UPDATE SET health = EXCLUDED.health,
               risk = EXCLUDED.risk, rul_h = EXCLUDED.rul_h, updated_at = EXCLUDED.updated_at""",
        (asset_id, mode, at or datetime.now(timezone.utc), health, risk, rul_h),
    )


def add_order(
    conn,
    asset_id: str,
    mode: str,
    *,
    kind: str = "predictive",
    status: str = "approved",
    priority: int = 3,
    sla_tier: str | None = "gold",
    opened_at: datetime,
    respond_by: datetime | None = None,
    closed_at: datetime | None = None,
    risk: float | None = None,
    predicted_failure_at: datetime | None = None,
    predicted_mttr_h: float | None = None,
    first_time_fix: bool | None = None,
    history: list[tuple[datetime, str]] = (),
) -> int:
    """Insert an order (and its history rows: (at, status) pairs); returns its id."""
    steps = [(opened_at, "proposed" if kind == "predictive" and status == "proposed" else "approved"),
             *history]
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO service_orders (asset_id, mode, kind, status, priority, sla_tier, risk,
                   predicted_failure_at, predicted_mttr_h, respond_by, opened_at, closed_at,
                   first_time_fix, status_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING order_id""",
            (asset_id, mode, kind, status, priority, sla_tier, risk, predicted_failure_at,
             predicted_mttr_h, respond_by, opened_at, closed_at, first_time_fix,
             max(closed_at or opened_at, steps[-1][0])),
        )
        order_id = cur.fetchone()[0]
        cur.executemany(
            "INSERT INTO service_order_history (order_id, at, from_status, to_status, actor, reason) "
            "VALUES (%s, %s, %s, %s, 'seed', %s)",
            [(order_id, at, prev, st, "opened" if prev is None else "planner")
             for (at, st), prev in zip(steps, [None, *(s for _, s in steps)])],
        )
    return order_id


def add_downtime(conn, asset_id: str, started_at: datetime, ended_at: datetime | None, *,
                 mode: str | None = "bearing_wear", planned: bool = False) -> None:
    conn.execute(
        """INSERT INTO downtime (asset_id, mode, started_at, ended_at, planned)
           VALUES (%s, %s, %s, %s, %s)""",
        (asset_id, mode, started_at, ended_at, planned),
    )


def add_repair(conn, asset_id: str, mode: str, started_at: datetime, finished_at: datetime, *,
               first_time_fix: bool = True, kind: str = "corrective",
               order_id: int | None = None) -> None:
    conn.execute(
        """INSERT INTO repairs (asset_id, mode, order_id, kind, started_at, finished_at,
                                first_time_fix)
           VALUES (%s, %s, %s, %s, %s, %s, %s)""",
        (asset_id, mode, order_id, kind, started_at, finished_at, first_time_fix),
    )


def seed_installed_base(conn: psycopg.Connection, prefix: str, n_assets: int, *,
                        seed: int = 0, now: datetime | None = None) -> dict:
    """A fleet of ``n_assets`` over 3 models, 20 customers with 2 sites each, every asset with
    a contract, health per failure mode, downtime and repairs over the last 90 days, and live
    orders on about 10% of them. Returns the ids used. Bulk rows go in with COPY."""
    rng = random.Random(seed)
    now = now or datetime.now(timezone.utc)
    models = [f"{prefix}-M{i}" for i in range(3)]
    customers = [f"{prefix}-C{i}" for i in range(20)]
    tiers = ["platinum", "gold", "silver", "bronze"]
    for m in models:
        add_model(conn, m)
    for c in customers:
        add_customer(conn, c, [f"{c}-S0", f"{c}-S1"])
    assets, contracts, health, downtime, repairs, orders = [], [], [], [], [], []
    for i in range(n_assets):
        a = f"{prefix}-A{i:05d}"
        c = rng.choice(customers)
        install = (now - timedelta(days=rng.randint(100, 2000))).date()
        assets.append((a, f"SN-{a}", models[i % 3], c, f"{c}-S{rng.randint(0, 1)}", install,
                       "in_service", install + timedelta(days=730)))
        contracts.append((f"C-{a}", a, rng.choice(tiers), install, install + timedelta(days=3650)))
        for mode, *_ in MODES:
            h = rng.random()
            health.append((a, mode, now, h, (1 - h) ** 3, 24 * 90 * h))
        t = now - timedelta(days=90)
        for _ in range(rng.randint(0, 3)):
            t += timedelta(hours=rng.uniform(24, 700))
            if t >= now:
                break
            dur = timedelta(hours=rng.uniform(1, 12))
            mode = rng.choice(MODES)[0]
            downtime.append((a, mode, t, t + dur, False))
            repairs.append((a, mode, "corrective", t + dur / 4, t + dur, rng.random() < 0.8))
            t += dur
        if rng.random() < 0.1:
            opened = now - timedelta(hours=rng.uniform(0, 72))
            orders.append((a, rng.choice(MODES)[0], "predictive", rng.choice(["approved", "scheduled"]),
                           rng.randint(1, 5), rng.choice(tiers), rng.random(),
                           opened + timedelta(days=rng.uniform(1, 20)), rng.uniform(2, 8),
                           opened + timedelta(hours=rng.choice([4, 8, 24, 72])), opened))
    with conn.cursor() as cur:
        _copy(cur, "assets (asset_id, serial, model_id, customer_id, site_id, install_date, "
              "lifecycle_stage, warranty_end)", assets)
        _copy(cur, "service_contracts (contract_id, asset_id, tier, starts_on, ends_on)", contracts)
        _copy(cur, "asset_health (asset_id, mode, updated_at, health, risk, rul_h)", health)
        _copy(cur, "downtime (asset_id, mode, started_at, ended_at, planned)", downtime)
        _copy(cur, "repairs (asset_id, mode, kind, started_at, finished_at, first_time_fix)",
              repairs)
        _copy(cur, "service_orders (asset_id, mode, kind, status, priority, sla_tier, risk, "
              "predicted_failure_at, predicted_mttr_h, respond_by, opened_at)", orders)
    if not conn.autocommit:
        conn.commit()
    return {"models": models, "customers": customers, "assets": [a[0] for a in assets],
            "orders": len(orders)}


def _copy(cur, target: str, rows: list[tuple]) -> None:
    with cur.copy(f"COPY {target} FROM STDIN") as cp:
        for row in rows:
            cp.write_row(row)


__all__ = ["add_asset", "add_customer", "add_downtime", "add_health", "add_model",
           "add_order", "add_repair", "seed_installed_base"]
