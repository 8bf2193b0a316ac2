"""Start, watch and stop the platform's processes (demo, end-to-end tests).

Each child runs in its own process group with its output in a log file; ``stop`` asks every
child to finish (SIGINT, then SIGTERM, then SIGKILL after grace periods) in reverse start order.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from prognos.logs import event

log = logging.getLogger("prognos.supervisor")


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    logfile: Path


class Supervisor:
    def __init__(self, log_dir: Path, env: dict[str, str] | None = None):
        self.log_dir = log_dir
        self.env = env or dict(os.environ)
        self.children: list[Child] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, *args: str) -> Child:
        """Run ``prognos ARGS...`` (this interpreter) as a child named ``name``."""
        logfile = self.log_dir / f"{name}.log"
        out = open(logfile, "ab")
        proc = subprocess.Popen([sys.executable, "-m", "prognos.cli", *args], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=out, env=self.env, start_new_session=True)
        out.close()
        child = Child(name, proc, logfile)
        self.children.append(child)
        event(log, "child_started", child=name, pid=proc.pid, log=str(logfile))
        return child

    def wait_event(self, name: str, event_name: str, timeout: float = 120.0) -> None:
        """Wait until child ``name`` has logged ``event_name`` (e.g. ingest's ``mqtt_subscribed``,
        detection's ``detection_started``: from then on what is published is stored and
        assessed). Raises RuntimeError if the child dies or the time runs out."""
        child = next(c for c in self.children if c.name == name)
        needle = f'"event":"{event_name}"'
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in child.logfile.read_text(errors="replace"):
                return
            if child.proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {child.proc.returncode} before {event_name}:\n"
                                   + tail(child.logfile))
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not log {event_name} within {timeout:g} s:\n" + tail(child.logfile))

    def dead(self) -> list[Child]:
        return [c for c in self.children if c.proc.poll() is not None]

    def kill9(self, name: str) -> None:
        for c in self.children:
            if c.name == name and c.proc.poll() is None:
                c.proc.kill()
                c.proc.wait()

    def stop(self, grace_s: float = 20.0) -> dict[str, int]:
        codes = {}
        for c in reversed(self.children):
            if c.proc.poll() is None:
                for sig, wait in ((signal.SIGINT, grace_s), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
                    try:
                        os.killpg(c.proc.pid, sig)
                    except ProcessLookupError:
                        break
                    try:
                        c.proc.wait(wait)
                        break
                    except subprocess.TimeoutExpired:
                        continue
            codes[c.name] = c.proc.wait()
            event(log, "child_stopped", child=c.name, code=codes[c.name])
        return codes

    def __enter__(self) -> "Supervisor":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def tail(path: Path, n: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""
