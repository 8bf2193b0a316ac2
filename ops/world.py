"""An isolated world for tests and benchmarks: a fresh database (every migration applied) on
the running TimescaleDB and a private Mosquitto on a free port, with its own state folder.

    with World() as w:
        w.settings        # Settings pointing at both
        w.env()           # environment for child processes (prognos ingest, simulate, ...)
        w.restart_broker()

Nothing is mocked: the same code paths as production, against real services.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
from pathlib import Path

import psycopg
from psycopg import sql

from prognos.config import Settings, settings_env
from prognos.logs import event
from ops.services import mosquitto, timescaledb
from ops.services.common import free_port
from schemas.migrate import migrate

log = logging.getLogger("prognos.world")
NAME = re.compile(r"^w(\d+)_[0-9a-f]+$")


class World:
    def __init__(self, base: Settings | None = None, *, broker: bool = True):
        self.base = base or Settings()
        self.broker = broker
        self.name = f"w{os.getpid()}_{secrets.token_hex(3)}"
        self.settings: Settings | None = None

    @property
    def root(self) -> Path:
        return self.base.state_dir / "worlds"

    def __enter__(self) -> "World":
        timescaledb.require_running(self.base)
        self._reap_dead_worlds()
        folder = self.root / self.name
        folder.mkdir(parents=True)
        self.settings = self.base.model_copy(update={
            "db_name": f"prognos_{self.name}", "state_dir": folder,
            "mqtt_port": free_port() if self.broker else self.base.mqtt_port})
        _create_db(self.settings)
        try:
            migrate(self.settings.dsn)
            if self.broker:
                mosquitto.start(self.settings)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        event(log, "world_up", world=self.name, db=self.settings.db_name, mqtt_port=self.settings.mqtt_port)
        return self

    def env(self) -> dict[str, str]:
        return settings_env(self.settings)

    def restart_broker(self) -> None:
        mosquitto.stop(self.settings)
        mosquitto.start(self.settings)

    def __exit__(self, *exc) -> None:
        if self.settings is None:
            return
        _teardown(self.base, self.settings.state_dir, self.settings.db_name, self.broker)
        event(log, "world_down", world=self.name)

    def _reap_dead_worlds(self) -> None:
        """Remove what worlds of killed processes left behind (broker, database, folder)."""
        if not self.root.exists():
            return
        for folder in self.root.iterdir():
            m = NAME.match(folder.name)
            if not m or _alive(int(m.group(1))):
                continue
            _teardown(self.base, folder, f"prognos_{folder.name}", True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _create_db(settings: Settings) -> None:
    with psycopg.connect(settings.dsn_for("postgres", admin=True), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
            sql.Identifier(settings.db_name), sql.Identifier(settings.db_user)))


def _teardown(base: Settings, folder: Path, db_name: str, broker: bool) -> None:
    if broker:
        mosquitto.remove(base.model_copy(update={"state_dir": folder}))
    try:
        with psycopg.connect(base.dsn_for("postgres", admin=True), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db_name)))
    except psycopg.Error as exc:
        event(log, "world_drop_failed", level=logging.WARNING, db=db_name, error=str(exc))
    shutil.rmtree(folder, ignore_errors=True)
