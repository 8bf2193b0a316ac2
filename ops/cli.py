"""``prognos services`` and ``prognos devices``: the project's own TimescaleDB and Mosquitto,
and device credentials on that broker (operations tooling, dispatched by ``prognos.cli``)."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from prognos.config import Settings
from prognos.logs import event, setup_logging

log = logging.getLogger("prognos.cli")


def cmd_services(args) -> int:
    from ops.services import mosquitto, timescaledb
    from ops.services.common import ensure_secrets, remove_service_dir

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
    elif args.action in ("down", "purge"):
        mosquitto.stop(base)
        timescaledb.stop(base, unmount=True)
        if args.action == "purge":       # what the services keep outside the state folder
            from ops.demo import demo_settings
            worlds = sorted((base.state_dir / "worlds").glob("*"))
            for s in [base, demo_settings(base)] + [base.model_copy(update={"state_dir": w}) for w in worlds]:
                mosquitto.remove(s)
            remove_service_dir(base.state_dir / "timescaledb")
    else:
        print(json.dumps({"timescaledb": timescaledb.is_running(base),
                          "mosquitto": bool(mosquitto.pid(base))}))
    return 0


def cmd_devices(args) -> int:
    from ops import devices
    settings = Settings()
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
    p = argparse.ArgumentParser(prog="prognos", description="Prognos operations tooling")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("services", help="provision/start/stop TimescaleDB and Mosquitto")
    s.add_argument("action", choices=["up", "down", "status", "purge"],
                   help="purge: down, and delete the services' folders kept outside the state folder")
    s.set_defaults(func=cmd_services)
    d = sub.add_parser("devices", help="provision, revoke or list device credentials")
    d.add_argument("action", choices=["provision", "revoke", "list"])
    d.add_argument("ids", nargs="*", help="provision: DEVICE_ID ASSET_ID pairs; revoke: DEVICE_IDs")
    d.add_argument("--rotate", action="store_true", help="issue new secrets for existing devices")
    d.set_defaults(func=cmd_devices)
    return p


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    args = build_parser().parse_args(argv)
    from ops.services.common import ServiceError
    try:
        return int(args.func(args) or 0)
    except ServiceError as exc:
        print(f"prognos {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
