"""Register a fleet's installed base in the database: product models, sensors, failure modes,
customers, sites, assets, service contracts and devices (credentials through
:func:`ops.devices.provision`).  Idempotent: existing rows are left as they are, so a
second run (or a restarted simulator) changes nothing and keeps the device secrets."""

from __future__ import annotations

import logging
from datetime import timedelta

import psycopg
from psycopg.types.json import Jsonb

from prognos.config import Settings
from prognos.logs import event
from simulator.catalog import CATALOG
from simulator.fleet import Fleet

log = logging.getLogger("prognos.simulator.register")


def signature(pm, fm) -> dict[str, float]:
    """Signed weight per sensor a mode moves: its shift at full damage in noise units, scaled
    so the largest magnitude is 1 (what detection matches anomalies against)."""
    noise = {s.name: s.noise_sd or 1e-3 * max(abs(s.hi - s.lo), 1.0) for s in pm.sensors}
    raw = {name: eff / noise[name] for name, eff in fm.effects.items() if eff}
    top = max((abs(v) for v in raw.values()), default=0.0)
    return {k: round(v / top, 4) for k, v in raw.items()} if top else {}


def register_catalog(conn: psycopg.Connection, model_ids=None) -> None:
    """Product models, their sensors (positions = telemetry.vals order) and failure modes."""
    models = [CATALOG[m] for m in (model_ids or CATALOG)]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO product_models (model_id, name, category) VALUES (%s, %s, %s) "
            "ON CONFLICT (model_id) DO NOTHING",
            [(pm.model_id, pm.name, pm.category) for pm in models])
        cur.executemany(
            "INSERT INTO sensors (model_id, position, name, unit, min_value, max_value) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (model_id, position) DO NOTHING",
            [(pm.model_id, i, s.name, s.unit, s.lo, s.hi)
             for pm in models for i, s in enumerate(pm.sensors)])
        cur.executemany(
            "INSERT INTO failure_modes (model_id, mode, description, sensors, predictable, mttr_h, "
            "signature, intermittent) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (model_id, mode) DO NOTHING",
            [(pm.model_id, fm.mode, fm.description, list(fm.sensors), fm.predictable,
              fm.mttr_h * pm.repair_factor, Jsonb(signature(pm, fm)), bool(fm.spike_sensors))
             for pm in models for fm in pm.failure_modes])
        # a registered model must match the catalog (positions are the telemetry layout)
        for pm in models:
            rows = cur.execute("SELECT name FROM sensors WHERE model_id = %s ORDER BY position",
                               (pm.model_id,)).fetchall()
            if [r[0] for r in rows] != pm.sensor_names:
                raise RuntimeError(
                    f"product model {pm.model_id} is registered with sensors "
                    f"{[r[0] for r in rows]}, the simulator's catalog has {pm.sensor_names}")


def register_fleet(settings: Settings, fleet: Fleet, *, provision_devices: bool = True) -> dict:
    """Write the fleet's installed base; returns ``{device_id: secret}`` of its devices."""
    assets = fleet.assets
    start = fleet.start.date()
    with psycopg.connect(settings.dsn) as conn:
        register_catalog(conn, sorted({a.model_id for a in assets}))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO customers (customer_id, name) VALUES (%s, %s) "
                "ON CONFLICT (customer_id) DO NOTHING",
                [(c.customer_id, c.name) for c in fleet.customers])
            cur.executemany(
                "INSERT INTO sites (site_id, customer_id, name, region) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (site_id) DO NOTHING",
                [(s.site_id, s.customer_id, s.name, s.region) for s in fleet.sites.values()])
            cur.executemany(
                "INSERT INTO assets (asset_id, serial, model_id, customer_id, site_id, "
                "install_date, warranty_end) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (asset_id) DO NOTHING",
                [(a.asset_id, a.serial, a.model_id, a.customer_id, a.site_id, a.install_date,
                  a.warranty_end) for a in assets])
            cur.executemany(
                "INSERT INTO service_contracts (contract_id, asset_id, tier, starts_on, ends_on) "
                "SELECT %s, %s, %s, %s, %s WHERE NOT EXISTS "
                "(SELECT 1 FROM service_contracts WHERE contract_id = %s)",
                [(f"{a.asset_id}-sla", a.asset_id, a.tier, min(a.install_date, start),
                  start + timedelta(days=3 * 365), f"{a.asset_id}-sla") for a in assets])
        conn.commit()
    creds = {}
    if provision_devices:
        from ops.devices import provision

        creds = provision(settings, [(a.device_id, a.asset_id) for a in assets])
    event(log, "fleet_registered", assets=len(assets), customers=len(fleet.customers),
          sites=len(fleet.sites), devices=len(creds))
    return creds
