"""TimescaleDB, provisioned and started by the project.

Where the host's package manager has ``postgresql-NN-timescaledb`` it is installed and run from
the host. Debian 12 has none: there a Debian 13 root is built once with
``debootstrap --variant=minbase --include=postgresql-17-timescaledb trixie`` under
``.prognos/timescaledb/root`` and PostgreSQL 17 runs from it through ``chroot`` on the project's
port. Either way the data directory lives under the project's state folder and is reused. In
the chroot the server's files are reached through the chroot, whatever the checkout folder's
permissions; on the host, when the ``postgres`` user cannot reach the state folder (a checkout
under ``/root`` or in a 0700 folder), the server's folder is ``/var/lib/prognos/timescaledb-<hash>``
with a symlink to it (``common.service_dir``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from prognos.config import Settings
from prognos.logs import event
from ops.services.common import ServiceError, apt_install, port_open, run, service_dir, wait_port

log = logging.getLogger("prognos.services")

MIRROR = os.environ.get("PROGNOS_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PG_CONF = {
    "listen_addresses": "'127.0.0.1'",
    "shared_preload_libraries": "'timescaledb'",
    "max_connections": "300",
    "shared_buffers": "'512MB'",
    "work_mem": "'32MB'",
    "maintenance_work_mem": "'256MB'",
    "max_wal_size": "'4GB'",
    "checkpoint_timeout": "'15min'",
    "timescaledb.telemetry_level": "off",
    "timescaledb.max_background_workers": "4",
    "max_locks_per_transaction": "256",
    "password_encryption": "'scram-sha-256'",
    "log_min_messages": "warning",
}


@dataclass(frozen=True)
class Layout:
    """Where the server's binaries and data are, and how a command is run against them."""

    mode: str                 # 'host' or 'chroot'
    root: Path | None         # chroot root (mode 'chroot')
    bindir: str               # PostgreSQL bin dir as seen by the server
    datadir: str              # data dir as seen by the server
    logfile: str

    def cmd(self, *args: str) -> list[str]:
        env = ["env", "-i", "PATH=/usr/bin:/bin", "LANG=C.UTF-8", "LC_ALL=C.UTF-8",
               "HOME=/var/lib/postgresql"]
        if self.mode == "chroot":
            return ["chroot", "--userspec=postgres:postgres", str(self.root), *env, *args]
        return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *env, *args]

    def host_path(self, path: str) -> Path:
        return Path(str(self.root) + path) if self.mode == "chroot" else Path(path)


def _host_package() -> tuple[str, str] | None:
    """(package, major) of the newest ``postgresql-NN-timescaledb`` apt knows, if any."""
    if not shutil.which("apt-cache"):
        return None
    out = run(["apt-cache", "search", "--names-only", r"^postgresql-[0-9]+-timescaledb$"],
              check=False, quiet=True).stdout
    found = sorted((int(m.group(1)), m.group(0)) for m in
                   re.finditer(r"^postgresql-(\d+)-timescaledb(?=\s)", out, re.M))
    if not found:
        return None
    major, pkg = found[-1]
    return pkg, str(major)


def layout(settings: Settings) -> Layout:
    base = settings.state_dir / "timescaledb"
    root = base / "root"
    if root.exists() or not (base / "host-mode").exists() and _host_package() is None:
        return Layout("chroot", root, "/usr/lib/postgresql/17/bin", "/var/lib/postgresql/prognos",
                      "/var/log/postgresql/prognos.log")
    major = (base / "host-mode").read_text().strip() if (base / "host-mode").exists() else _host_package()[1]
    home = service_dir(base, "postgres", create=False)
    return Layout("host", None, f"/usr/lib/postgresql/{major}/bin", str(home / "data"),
                  str(home / "postgresql.log"))


def provision(settings: Settings, admin_password: str) -> Layout:
    """Install the server (first time only) and create the cluster; idempotent."""
    base = settings.state_dir / "timescaledb"
    base.mkdir(parents=True, exist_ok=True)
    lay = layout(settings)
    if lay.mode == "chroot":
        if not (lay.root / "usr/lib/postgresql/17/bin/postgres").exists():
            apt_install("debootstrap")
            partial = base / "root.partial"
            if partial.exists():
                _umount_proc(partial)
                shutil.rmtree(partial)
            t0 = time.monotonic()
            run(["debootstrap", "--variant=minbase", "--include=postgresql-17-timescaledb",
                 "trixie", str(partial), MIRROR], timeout=1800)
            partial.rename(lay.root)
            event(log, "debootstrap_done", seconds=round(time.monotonic() - t0, 1))
        _mount_proc(lay.root)
        rundir = lay.root / "var/run/postgresql"
        rundir.mkdir(parents=True, exist_ok=True)
        run(["chroot", str(lay.root), "chown", "-R", "postgres:postgres", "/var/run/postgresql",
             "/var/log/postgresql"], quiet=True)
    else:
        pkg, major = _host_package()
        apt_install(pkg)
        home = service_dir(base, "postgres")    # elsewhere if postgres cannot reach the checkout
        (home / "host-mode").write_text(major)
        lay = layout(settings)
        run(["chown", "postgres:postgres", str(home)], quiet=True)
        Path("/var/run/postgresql").mkdir(exist_ok=True)
        run(["chown", "postgres:postgres", "/var/run/postgresql"], quiet=True)
    data = lay.host_path(lay.datadir)
    if not (data / "PG_VERSION").exists():
        pwfile = (lay.host_path("/var/lib/postgresql/.pwfile") if lay.mode == "chroot"
                  else Path(lay.datadir).parent / ".pwfile")
        pwfile.parent.mkdir(parents=True, exist_ok=True)
        pwfile.write_text(admin_password + "\n")
        run(["chown", "postgres:postgres", str(pwfile)], quiet=True)
        pw_inside = "/var/lib/postgresql/.pwfile" if lay.mode == "chroot" else str(pwfile)
        try:
            run(lay.cmd(f"{lay.bindir}/initdb", "-D", lay.datadir, "-U", "postgres",
                        "--pwfile", pw_inside, "--auth-local=peer", "--auth-host=scram-sha-256",
                        "-E", "UTF8", "--locale=C.UTF-8"))
        finally:
            pwfile.unlink(missing_ok=True)
        conf = data / "postgresql.conf"
        conf.write_text(conf.read_text() + "\n# prognos\n"
                        + "".join(f"{k} = {v}\n" for k, v in PG_CONF.items()))
    return lay


def _mounted(path: Path) -> bool:
    target = str(path.resolve())
    with open("/proc/mounts") as f:
        return any(line.split()[1] == target for line in f)


def _mount_proc(root: Path) -> None:
    proc = root / "proc"
    proc.mkdir(exist_ok=True)
    if not _mounted(proc):
        run(["mount", "-t", "proc", "proc", str(proc)])


def _umount_proc(root: Path) -> None:
    proc = root / "proc"
    if proc.exists() and _mounted(proc):
        run(["umount", "-l", str(proc)], check=False)


def is_running(settings: Settings) -> bool:
    return port_open(settings.db_host, settings.db_port)


def start(settings: Settings) -> None:
    """Start the server if it is not running (the cluster must be provisioned)."""
    if is_running(settings):
        return
    lay = layout(settings)
    if lay.mode == "chroot":
        _mount_proc(lay.root)
    run(lay.cmd(f"{lay.bindir}/pg_ctl", "-D", lay.datadir, "-l", lay.logfile, "-w", "-t", "120",
                "-o", f"-p {settings.db_port}", "start"))
    wait_port(settings.db_host, settings.db_port, 60)
    event(log, "timescaledb_up", port=settings.db_port, mode=lay.mode,
          datadir=str(lay.host_path(lay.datadir)))


def stop(settings: Settings, *, unmount: bool = False) -> None:
    """Stop the server (fast shutdown); with ``unmount`` also release the chroot's /proc."""
    lay = layout(settings)
    data = lay.host_path(lay.datadir)
    if (data / "postmaster.pid").exists():
        run(lay.cmd(f"{lay.bindir}/pg_ctl", "-D", lay.datadir, "-m", "fast", "-w", "-t", "120",
                    "stop"), check=False)
        event(log, "timescaledb_down", port=settings.db_port)
    if unmount and lay.mode == "chroot" and lay.root is not None:
        _umount_proc(lay.root)


def bootstrap_roles(settings: Settings) -> str:
    """Create the application role and database, and timescaledb in template1; return the edition."""
    admin = settings.dsn_for("postgres", admin=True)
    with psycopg.connect(admin, autocommit=True) as conn:
        for db in ("template1", "postgres"):
            with psycopg.connect(settings.dsn_for(db, admin=True), autocommit=True) as c:
                c.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (settings.db_user,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(psycopg.sql.SQL("{} ROLE {} LOGIN CREATEDB PASSWORD {}").format(
            psycopg.sql.SQL(verb), psycopg.sql.Identifier(settings.db_user),
            psycopg.sql.Literal(settings.db_password)))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (settings.db_name,)).fetchone():
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {} OWNER {}").format(
                psycopg.sql.Identifier(settings.db_name), psycopg.sql.Identifier(settings.db_user)))
        return conn.execute("SHOW timescaledb.license").fetchone()[0]


def up(settings: Settings) -> str:
    """Provision if needed, start, create roles; return the TimescaleDB edition (license)."""
    provision(settings, settings.db_admin_password)
    start(settings)
    edition = bootstrap_roles(settings)
    event(log, "timescaledb_ready", port=settings.db_port, edition=edition)
    return edition


def require_running(settings: Settings) -> None:
    if not is_running(settings):
        raise ServiceError(f"TimescaleDB is not running on {settings.db_host}:{settings.db_port};"
                           " run `make services` (prognos services up)")
