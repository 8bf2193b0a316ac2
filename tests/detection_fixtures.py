"""A small synthetic installed base with telemetry written the way ingest writes it (rows +
outbox batches), for the detection service tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import psycopg

SENSORS = [("load", "%", 0, 100), ("vibration_rms", "mm/s", 0, 50), ("bearing_temp", "degC", -20, 150),
           ("current", "A", 0, 100)]
MODES = [("bearing_wear", ["vibration_rms", "bearing_temp"], True, 6.0),
         ("electrical", ["current"], True, 4.0), ("sudden", [], False, 8.0)]
STEP = timedelta(minutes=5)


def make_fleet(conn: psycopg.Connection, uid: str, n_assets: int = 6) -> dict:
    model = f"TST-{uid}"
    conn.execute("INSERT INTO product_models (model_id, name, category) VALUES (%s, 'Test pump', 'pump')", (model,))
    for i, (name, unit, lo, hi) in enumerate(SENSORS):
        conn.execute("INSERT INTO sensors VALUES (%s, %s, %s, %s, %s, %s)", (model, i, name, unit, lo, hi))
    for mode, sensors, predictable, mttr in MODES:
        conn.execute("INSERT INTO failure_modes (model_id, mode, sensors, predictable, mttr_h) VALUES (%s, %s, %s, %s, %s)",
                     (model, mode, sensors, predictable, mttr))
    conn.execute("INSERT INTO customers VALUES (%s, 'Acme')", (f"c-{uid}",))
    conn.execute("INSERT INTO sites VALUES (%s, %s, 'Plant 1', 'north')", (f"s-{uid}", f"c-{uid}"))
    assets, devices = [], []
    for i in range(n_assets):
        a, d = f"a-{uid}-{i}", f"d-{uid}-{i}"
        conn.execute("INSERT INTO assets (asset_id, serial, model_id, customer_id, site_id, install_date) "
                     "VALUES (%s, %s, %s, %s, %s, '2024-01-01')", (a, f"SN-{uid}-{i}", model, f"c-{uid}", f"s-{uid}"))
        conn.execute("INSERT INTO service_contracts VALUES (%s, %s, %s, '2020-01-01', '2099-12-31')",
                     (f"k-{uid}-{i}", a, "platinum" if i == 0 else "silver"))
        conn.execute("INSERT INTO devices (device_id, asset_id, password_hash) VALUES (%s, %s, 'x')", (d, a))
        assets.append(a)
        devices.append(d)
    return {"model": model, "assets": assets, "devices": devices}


def readings(n_devices: int, start: datetime, n_steps: int, degrade: dict[int, int], seed: int = 0):
    """float array [n_steps, n_devices, 4]; ``degrade`` maps device -> first degraded step."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps)
    hours = (start.hour + t * STEP.total_seconds() / 3600.0) % 24
    load = 55 + 35 * np.sin(2 * np.pi * (hours - 8) / 24)
    V = np.empty((n_steps, n_devices, 4))
    for d in range(n_devices):
        base = rng.normal(0, 0.3, 3)
        V[:, d, 0] = load + rng.normal(0, 1.0, n_steps)
        V[:, d, 1] = 2.0 + base[0] + 0.02 * load + rng.normal(0, 0.15, n_steps)
        V[:, d, 2] = 45 + base[1] + 0.25 * load + rng.normal(0, 0.5, n_steps)
        V[:, d, 3] = 12 + base[2] + 0.1 * load + rng.normal(0, 0.3, n_steps)
        if d in degrade:
            k = np.clip(t - degrade[d], 0, None)
            grow = np.expm1(k / (n_steps - degrade[d]) * 2.5)       # accelerating wear
            V[:, d, 1] += 0.6 * grow
            V[:, d, 2] += 3.0 * grow
    return V


def write(conn: psycopg.Connection, devices: list[str], start: datetime, V: np.ndarray, *,
          outbox: bool, batch_steps: int = 12) -> None:
    """Store readings as ingest does: telemetry rows and, with ``outbox``, one batch per
    ``batch_steps`` steps listing the keys."""
    n_steps = V.shape[0]
    for b in range(0, n_steps, batch_steps):
        keys_d, keys_t = [], []
        with conn.cursor() as cur, cur.copy("COPY telemetry (time, device_id, vals) FROM STDIN") as cp:
            for k in range(b, min(n_steps, b + batch_steps)):
                ts = start + k * STEP
                for j, d in enumerate(devices):
                    cp.write_row((ts, d, [float(x) for x in V[k, j]]))
                    keys_d.append(d)
                    keys_t.append(ts)
        if outbox:
            conn.execute("INSERT INTO ingest_batches (device_ids, times, min_time, max_time) VALUES (%s, %s, %s, %s)",
                         (keys_d, keys_t, min(keys_t), max(keys_t)))
        conn.commit()


def past_start(days: float) -> datetime:
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    return now - timedelta(days=days)
