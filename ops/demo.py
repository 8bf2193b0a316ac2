"""``prognos demo``: the whole platform end to end on a simulated fleet.

Registers a demo fleet (every product model), backfills its history straight into TimescaleDB,
learns from that history what ``prognos train`` learns (failure-mode signatures, the failure
predictor with its interval), then starts ingest, detection and the API as separate processes and runs the simulator live
over MQTT on an accelerated clock (one simulated hour per wall second until it catches up with
the present, then real time). A drill fault (a seal leak on one pump) starts when the live run
does, so within a few minutes a device degrades, is flagged, and a predictive service order
appears; technicians act on predictive orders (the simulator's ``execute_orders``) and their
repairs complete them. Each run starts the demo fleet afresh. Ctrl-C stops everything it
started.

The demo keeps to its own: a database it creates (``prognos_demo``; marked by a comment on the
database, and the reset refuses a database without that mark), its own Mosquitto on port 18831
(the configured broker port + 1) with its own password file (the production broker's device list is not touched), and its own
state folder ``.prognos/demo`` (device credentials, trained models, logs).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone

import psycopg
from psycopg import sql

from prognos.config import Settings, settings_env
from prognos.logs import event, setup_logging
from ops.services import mosquitto
from ops.services.common import port_open
from ops.supervisor import Supervisor, tail

log = logging.getLogger("prognos.demo")
PREFIX = "demo"
#: The demo's own database, apart from the one production uses.
DEMO_DB = "prognos_demo"
#: The start of the comment ``prognos demo`` puts on the database it creates.
MARK = "prognos demo database"


def _args(argv):
    p = argparse.ArgumentParser(prog="prognos demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--assets", type=int, default=60, help="fleet size (default 60)")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--history-days", type=float, default=30.0, help="history backfilled first (default 30)")
    p.add_argument("--live-hours", type=float, default=72.0,
                   help="the live run starts this many simulated hours in the past (default 72)")
    p.add_argument("--acceleration", type=float, default=3600.0,
                   help="simulated seconds per wall second until caught up (default 3600)")
    p.add_argument("--duration", type=float, default=None, help="stop after the simulator has run this many wall seconds (counted from its start, after training)")
    p.add_argument("--database", default=DEMO_DB,
                   help=f"the demo's own database, created (and marked) by the demo (default {DEMO_DB}); "
                        "a database the demo did not create is refused")
    p.add_argument("--mqtt-port", type=int, default=None,
                   help="port of the demo's own Mosquitto (default: the configured broker port + 1, 18831)")
    a = p.parse_args(argv)
    if a.assets < 3 or a.history_days < 1 or a.live_hours <= 0 or a.acceleration < 1:
        p.error("need --assets >= 3, --history-days >= 1, --live-hours > 0, --acceleration >= 1")
    return a


def demo_settings(base: Settings, database: str = DEMO_DB, mqtt_port: int | None = None) -> Settings:
    """The demo's own database, broker port (the configured one + 1) and state folder
    (``.prognos/demo``: device credentials, broker files, models, logs)."""
    return base.model_copy(update={"db_name": database, "state_dir": base.state_dir / "demo",
                                   "mqtt_port": mqtt_port or base.mqtt_port + 1})


class NotDemoDatabase(RuntimeError):
    """The database was not created by ``prognos demo``: the demo will not touch it."""


def _marked(conn: psycopg.Connection) -> bool:
    """Whether the connected database carries the demo's mark (its comment, set at creation)."""
    comment = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                           "WHERE datname = current_database()").fetchone()[0]
    return bool(comment) and comment.startswith(MARK)


def ensure_database(settings: Settings) -> None:
    """Create the demo's database (``settings.db_name``) with the demo's mark, or check that an
    existing one carries it; NotDemoDatabase otherwise. The application role creates it (it has
    CREATEDB); timescaledb comes from template1."""
    with psycopg.connect(settings.dsn_for("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              (settings.db_name,)).fetchone()
        if not exists:
            name = sql.Identifier(settings.db_name)
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
            conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(name, sql.Literal(
                f"{MARK}, created {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; every run "
                "of `prognos demo` deletes its demo fleet here")))
            event(log, "demo_database_created", database=settings.db_name)
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        if not _marked(conn):
            raise NotDemoDatabase(
                f"database {settings.db_name!r} exists and was not created by `prognos demo`; the "
                "demo resets its data on every run, so it refuses to use it. Give the demo a "
                "database of its own (--database NAME).")


def _reset(conn: psycopg.Connection) -> None:
    """Forget the previous demo fleet: its telemetry, orders, events and detector state; only
    in a database the demo created (NotDemoDatabase otherwise, before anything is deleted)."""
    if not _marked(conn):
        db = conn.execute("SELECT current_database()").fetchone()[0]
        raise NotDemoDatabase(f"database {db!r} was not created by `prognos demo`; not resetting it")
    like = f"{PREFIX}-%"
    for table in ("telemetry", "telemetry_1m", "telemetry_1h", "device_events"):
        conn.execute(f"DELETE FROM {table} WHERE device_id LIKE %s", (like,))
    conn.execute("DELETE FROM ingest_batches")
    conn.execute("DELETE FROM detector_checkpoints")
    conn.execute("DELETE FROM assets WHERE asset_id LIKE %s", (like,))   # cascades to orders, repairs, ...


def _status(settings: Settings, stop: threading.Event, started: float, drill: str) -> None:
    first = None
    while not stop.wait(10.0):
        try:
            with psycopg.connect(settings.dsn, autocommit=True) as conn:
                readings = conn.execute("SELECT coalesce(sum(cardinality(device_ids)), 0) FROM ingest_batches").fetchone()[0]
                anomalies = conn.execute("SELECT count(*) FROM anomalies").fetchone()[0]
                orders = conn.execute(
                    "SELECT count(*) FILTER (WHERE kind = 'predictive' AND status IN (SELECT status FROM order_statuses WHERE live)), "
                    "count(*) FILTER (WHERE status = 'completed') FROM service_orders").fetchone()
                if first is None:
                    first = conn.execute(
                        "SELECT order_id, asset_id, mode, priority, respond_by FROM service_orders "
                        "WHERE kind = 'predictive' ORDER BY created_at LIMIT 1").fetchone()
                    if first:
                        print(f"\n>>> first predictive order #{first[0]} after {time.monotonic() - started:.0f} s: "
                              f"{first[1]} {first[2]} (priority {first[3]}, respond by {first[4]:%Y-%m-%d %H:%M} UTC)"
                              f"{'  <- the drill' if first[1] == drill else ''}\n", flush=True)
            print(f"[demo {time.monotonic() - started:5.0f} s] readings ingested {readings:,} | anomalies {anomalies} | "
                  f"open predictive orders {orders[0]} | completed orders {orders[1]}", flush=True)
        except psycopg.Error as exc:
            event(log, "status_failed", level=logging.WARNING, error=str(exc))


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _inject_drill(fleet, at: datetime) -> str:
    """Start a seal leak (90 h to failure) on the first pump that is not already leaking."""
    for a in fleet.assets:
        if a.model_id == "PMP-200" and not fleet.is_down(a.asset_id):
            try:
                fleet.inject(a.asset_id, "seal_leak", at=at, rate=1.0 / 90.0)
                return a.asset_id
            except ValueError:
                continue
    raise SystemExit("the demo fleet has no pump to run the drill on; use more --assets")


def _train(settings: Settings) -> None:
    """``prognos train`` on the backfilled history: detection starts with learned signatures and
    a failure predictor, so predictive orders carry a predicted failure time and interval."""
    from detection.train_cli import main as train_main

    print("learning from the history (prognos train) ...", flush=True)
    status = train_main(["--quiet"], settings=settings)
    if status not in (0, 1):
        raise SystemExit(f"prognos train failed (exit status {status})")


def _wait_api(settings: Settings, sup: Supervisor, timeout: float = 90.0) -> None:
    url = f"http://{settings.api_host}:{settings.api_port}/health"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sup.dead():
            break
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    dead = sup.dead()
    detail = "\n".join(f"--- {c.name} exited {c.proc.returncode}:\n{tail(c.logfile)}" for c in dead)
    raise SystemExit(f"the platform did not come up (API at {url}).\n{detail}")


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    setup_logging()
    from schemas.migrate import migrate

    base = Settings()
    settings = demo_settings(base, args.database, args.mqtt_port)
    started = time.monotonic()
    try:
        ensure_database(settings)
    except NotDemoDatabase as exc:
        raise SystemExit(str(exc)) from None
    if port_open(settings.api_host, settings.api_port):
        raise SystemExit(f"port {settings.api_port} is already in use (is another demo or `prognos api` running?);"
                         " stop it or set PROGNOS_API_PORT")
    signal.signal(signal.SIGTERM, _interrupt)     # `kill` stops the demo as cleanly as Ctrl-C
    migrate(settings.dsn)
    mosquitto.start(settings)
    try:
        return _run(args, base, settings, started)
    finally:
        mosquitto.stop(settings)


def _run(args, base: Settings, settings: Settings, started: float) -> int:
    """Reset, register and backfill the demo fleet, then run the platform until Ctrl-C."""
    from service_api.auth import create_token
    from simulator.backfill import backfill
    from simulator.fleet import Fleet, FleetSpec
    from simulator.register import register_fleet
    from simulator.runner import LiveRunner, RunOptions

    demo_dir = settings.state_dir
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    live_start = now - timedelta(hours=args.live_hours)
    start = live_start - timedelta(days=args.history_days)
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        _reset(conn)
    fleet = Fleet(FleetSpec(n_assets=args.assets, seed=args.seed, start=start, id_prefix=PREFIX, hazard_scale=2.0))
    creds = register_fleet(settings, fleet)
    print(f"backfilling {args.history_days:g} days of history for {args.assets} assets ...", flush=True)
    backfill(settings, fleet, start, live_start, step_s=600.0, progress=True)
    _train(settings)
    drill = _inject_drill(fleet, live_start)
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        token = create_token(conn, f"demo planner {now:%Y-%m-%d %H:%M}", "planner", expires_in=timedelta(days=30))
    token_file = base.state_dir / "planner.token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)

    sup = Supervisor(demo_dir / "logs", settings_env(settings))
    stop = threading.Event()
    try:
        sup.start("ingest", "ingest")
        sup.start("detect", "detect", "--poll", "1")
        sup.start("api", "api")
        sup.wait_event("ingest", "mqtt_subscribed")
        sup.wait_event("detect", "detection_started", timeout=600)   # it watches from the newest batch on
        _wait_api(settings, sup)
        url = f"http://{settings.api_host}:{settings.api_port}"
        print(f"""
Prognos demo is running ({args.assets} assets; logs in {demo_dir / 'logs'}).
  Planner page:  {url}/            (paste the token below)
  OpenAPI:       {url}/api/v1/openapi.json
  Planner token: {token}
                 (also in {token_file})
  Look at:       GET {url}/api/v1/service-orders  (predictive orders by priority)
                 GET {url}/api/v1/assets/{drill}  (the drill: a seal leak starting now)
                 GET {url}/api/v1/uptime, /api/v1/mttr, /api/v1/sla
  The simulator runs {args.live_hours:g} simulated hours at {args.acceleration:g}x (a reading every 10 simulated
  minutes per device), then real time. Ctrl-C stops everything.
""", flush=True)
        threading.Thread(target=_status, args=(settings, stop, started, drill), daemon=True).start()
        runner = LiveRunner(settings, fleet, RunOptions(
            acceleration=args.acceleration, rate_hz=1.0 / 600.0, batch=6, execute_orders=True,
            duration_s=args.duration, ground_truth_path=demo_dir / "ground_truth.jsonl"), credentials=creds)
        runner.run()                 # returns on Ctrl-C (or --duration)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        print("stopping ...", flush=True)
        codes = sup.stop()
        print(json.dumps({"stopped": codes}), flush=True)
    return 0
