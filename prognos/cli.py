"""The ``prognos`` command: one entry point for every part of the platform.

Subcommands owned by a package are loaded lazily, so ``prognos services up`` does not import
Numba or FastAPI.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys

from prognos.logs import event, setup_logging

log = logging.getLogger("prognos.cli")

DISPATCH = {
    "ingest": ("ingest.cli", "MQTT -> TimescaleDB ingest workers"),
    "simulate": ("simulator.cli", "simulated fleet: register, backfill, run, score"),
    "detect": ("detection.cli", "online detection service: anomalies, health, service orders"),
    "train": ("detection.train_cli", "train failure-prediction models from the platform's history"),
    "api": ("service_api.cli", "service API and planner page; API tokens"),
    "demo": ("prognos.demo", "run the whole platform end to end on a simulated fleet"),
}


def _settings():
    from prognos.config import Settings
    return Settings()


def cmd_services(args) -> int:
    from prognos.config import Settings
    from prognos.services import mosquitto, timescaledb
    from prognos.services.common import ensure_secrets

    base = Settings()
    if args.action == "up":
        ensure_secrets(base.state_dir)
        settings = Settings()  # now with the generated secrets
        edition = timescaledb.up(settings)
        mosquitto.start(settings)
        try:
            mosquitto.reload(settings)
        except Exception as exc:  # the schema may not exist yet on the very first start
            event(log, "mosquitto_reload_skipped", reason=str(exc))
        print(json.dumps({"timescaledb": f"{settings.db_host}:{settings.db_port}", "edition": edition,
                          "mosquitto": f"{settings.mqtt_host}:{settings.mqtt_port}"}))
    elif args.action == "down":
        mosquitto.stop(base)
        timescaledb.stop(base, unmount=True)
    else:
        print(json.dumps({"timescaledb": timescaledb.is_running(base),
                          "mosquitto": bool(mosquitto.pid(base))}))
    return 0


def cmd_migrate(args) -> int:
    from schemas.migrate import migrate
    settings = _settings()
    applied = migrate(settings.dsn)
    from prognos.services import mosquitto
    if mosquitto.pid(settings):
        mosquitto.reload(settings)
    print(json.dumps({"applied": applied}))
    return 0


def cmd_devices(args) -> int:
    from prognos import devices
    settings = _settings()
    if args.action == "provision":
        if len(args.ids) % 2:
            raise SystemExit("provision takes pairs: DEVICE_ID ASSET_ID [DEVICE_ID ASSET_ID ...]")
        pairs = list(zip(args.ids[::2], args.ids[1::2]))
        print(json.dumps(devices.provision(settings, pairs, rotate=args.rotate), indent=1))
    elif args.action == "revoke":
        for d in args.ids:
            if not devices.revoke(settings, d):
                print(f"unknown device: {d}", file=sys.stderr)
                return 2
    else:
        import psycopg
        with psycopg.connect(settings.dsn) as conn:
            for row in conn.execute("SELECT device_id, asset_id, status, created_at FROM devices ORDER BY 1"):
                print("\t".join(map(str, row)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="prognos", description="Prognos predictive service platform")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("services", help="provision/start/stop TimescaleDB and Mosquitto")
    s.add_argument("action", choices=["up", "down", "status"])
    s.set_defaults(func=cmd_services)
    m = sub.add_parser("migrate", help="apply schema migrations")
    m.set_defaults(func=cmd_migrate)
    d = sub.add_parser("devices", help="provision, revoke or list device credentials")
    d.add_argument("action", choices=["provision", "revoke", "list"])
    d.add_argument("ids", nargs="*", help="provision: DEVICE_ID ASSET_ID pairs; revoke: DEVICE_IDs")
    d.add_argument("--rotate", action="store_true", help="issue new secrets for existing devices")
    d.set_defaults(func=cmd_devices)
    for name, (_, help_) in DISPATCH.items():
        sub.add_parser(name, help=help_, add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    setup_logging()
    if argv and argv[0] in DISPATCH:
        module = importlib.import_module(DISPATCH[argv[0]][0])
        return int(module.main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Exception as exc:
        from prognos.services.common import ServiceError
        from schemas.migrate import MigrationError
        if isinstance(exc, (ServiceError, MigrationError)):
            print(f"prognos {args.command}: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
