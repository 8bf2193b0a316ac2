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

from prognos.logs import setup_logging

log = logging.getLogger("prognos.cli")

DISPATCH = {
    "ingest": ("ingest.cli", "MQTT -> TimescaleDB ingest workers"),
    "simulate": ("simulator.cli", "simulated fleet: register, backfill, run, score"),
    "detect": ("detection.cli", "online detection service: anomalies, health, service orders"),
    "train": ("detection.train_cli", "train failure-prediction models from the platform's history"),
    "api": ("service_api.cli", "service API and planner page; API tokens"),
    "plan": ("scheduling.cli", "field schedule: technicians routed to approved orders; pins"),
    # Operations tooling (the ``ops`` package, in a checkout only; not in the runtime wheel).
    "services": ("ops.cli", "provision/start/stop the project's own TimescaleDB and Mosquitto"),
    "devices": ("ops.cli", "provision, revoke or list device credentials on the project's broker"),
    "demo": ("ops.demo", "run the whole platform end to end on a simulated fleet"),
}


def _settings():
    from prognos.config import Settings
    return Settings()


def cmd_migrate(args) -> int:
    from schemas.migrate import migrate
    settings = _settings()
    applied = migrate(settings.dsn)
    try:  # the project's own broker (ops tooling, present in a checkout) reloads its ACL
        from ops.services import mosquitto
    except ImportError:
        mosquitto = None
    if mosquitto is not None and mosquitto.pid(settings):
        mosquitto.reload(settings)
    print(json.dumps({"applied": applied}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="prognos", description="Prognos predictive service platform")
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("migrate", help="apply schema migrations")
    m.set_defaults(func=cmd_migrate)
    for name, (_, help_) in DISPATCH.items():
        sub.add_parser(name, help=help_, add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    setup_logging()
    if argv and argv[0] in DISPATCH:
        name = DISPATCH[argv[0]][0]
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                print(f"prognos {argv[0]}: {name.split('.')[0]} is not installed here: it is "
                      "tooling that runs from a Prognos checkout (see README)", file=sys.stderr)
                return 2
            raise
        args = argv[1:] if name != "ops.cli" else argv
        return int(module.main(args) or 0)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Exception as exc:
        from schemas.migrate import MigrationError
        if isinstance(exc, MigrationError):
            print(f"prognos {args.command}: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
