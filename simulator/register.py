"""Register a fleet's installed base in the database: product models, sensors, failure modes,
customers, sites (with coordinates), assets, service contracts, the field service organisation
(technicians, depots, parts: :func:`register_field_service`) and devices (credentials through
:func:`ops.devices.provision`).  Idempotent: existing rows are left as they are, so a
second run (or a restarted simulator) changes nothing and keeps the device secrets."""

from __future__ import annotations

import logging
from datetime import timedelta

import psycopg
from psycopg.types.json import Jsonb

from prognos.config import Settings
from prognos.logs import event
from scheduling import parts as sched_parts
from scheduling import technicians as sched_techs
from simulator import technicians as sim_techs
from simulator.catalog import CATALOG
from simulator.fleet import Fleet
from simulator.geography import REGION_CENTRES
from simulator.manual import directions, nominal_mttr_h

log = logging.getLogger("prognos.simulator.register")


def register_catalog(conn: psycopg.Connection, model_ids=None) -> None:
    """Product models, their sensors (positions = telemetry.vals order) and failure modes with
    the manufacturer's knowledge only (:mod:`simulator.manual`): the direction (+1 / -1) of
    each sensor a mode moves, whether it is intermittent, the service manual's nominal MTTR.
    Nothing of the simulator's effect sizes, noise levels or repair-time draws."""
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
              nominal_mttr_h(pm, fm), Jsonb(directions(fm)), bool(fm.spike_sensors))
             for pm in models for fm in pm.failure_modes])
        # a registered model must match the catalog (positions are the telemetry layout)
        for pm in models:
            rows = cur.execute("SELECT name FROM sensors WHERE model_id = %s ORDER BY position",
                               (pm.model_id,)).fetchall()
            if [r[0] for r in rows] != pm.sensor_names:
                raise RuntimeError(
                    f"product model {pm.model_id} is registered with sensors "
                    f"{[r[0] for r in rows]}, the simulator's catalog has {pm.sensor_names}")


# The service manual's parts per failure mode (name, restock lead time in hours); fouling is
# cleaned, a sudden failure's part is not known before the visit.
PARTS = {"bearing_wear": ("bearing kit", 48.0), "seal_leak": ("seal kit", 72.0),
         "electrical": ("motor contactor set", 24.0)}
BASE_STOCK = 2                              # per part and depot
REQUIRED_LEVEL = {"electrical": 2}          # skill level a repair of the mode needs (default 1)


def register_field_service(conn: psycopg.Connection, fleet: Fleet) -> None:
    """The fleet's field service organisation for the scheduler: the simulator's technicians
    (home bases, the repairs each is trained for, weekday shifts 08-17 UTC), a depot per region
    with ``BASE_STOCK`` of each part, the parts each failure mode needs and the skill level."""
    models = sorted({a.model_id for a in fleet.assets})
    pairs = [(m, fm.mode) for m in models for fm in CATALOG[m].failure_modes]
    seed = fleet.spec.seed
    homes = sim_techs.homes(fleet.technicians, REGION_CENTRES, seed)
    skills = sim_techs.trained(fleet.technicians, pairs, seed, REQUIRED_LEVEL)
    for region, techs in fleet.technicians.items():
        depot = f"{fleet.spec.id_prefix}-depot-{region}"
        sched_parts.add_depot(conn, depot, f"Depot {region}", region, *REGION_CENTRES[region])
        for t in techs:
            sched_techs.add(conn, t.tech_id, f"Technician {t.tech_id}", region, homes[t.tech_id], depot_id=depot)
            for (model_id, mode), level in skills[t.tech_id].items():
                sched_techs.set_skill(conn, t.tech_id, model_id, mode, level)
    for mode, (name, lead_h) in PARTS.items():
        part_id = f"{fleet.spec.id_prefix}-{mode}-kit"
        sched_parts.add_part(conn, part_id, name, lead_h)
        for m in models:
            if any(fm.mode == mode for fm in CATALOG[m].failure_modes):
                sched_parts.set_mode_part(conn, m, mode, part_id)
        for region in fleet.technicians:
            sched_parts.set_stock(conn, f"{fleet.spec.id_prefix}-depot-{region}", part_id, BASE_STOCK)
    for (m, mode) in pairs:
        if mode in REQUIRED_LEVEL:
            sched_parts.set_requirement(conn, m, mode, REQUIRED_LEVEL[mode])


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
                "INSERT INTO sites (site_id, customer_id, name, region, lat, lon) VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (site_id) DO UPDATE SET lat = EXCLUDED.lat, lon = EXCLUDED.lon",
                [(s.site_id, s.customer_id, s.name, s.region, *fleet.site_coords[s.site_id])
                 for s in fleet.sites.values()])
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
        register_field_service(conn, fleet)
        conn.commit()
    creds = {}
    if provision_devices:
        from ops.devices import provision

        creds = provision(settings, [(a.device_id, a.asset_id) for a in assets])
    event(log, "fleet_registered", assets=len(assets), customers=len(fleet.customers),
          sites=len(fleet.sites), devices=len(creds))
    return creds
