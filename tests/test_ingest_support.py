"""Helpers for the ingest tests (no tests here): a small fleet in the session database, an
ingest worker in a thread or in its own process, and polling."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

from ingest.worker import IngestOptions, IngestWorker, RetryPolicy
from prognos.config import settings_env
from ops.devices import provision

ROOT = Path(__file__).resolve().parent.parent
SENSORS = [("vibration_rms", "mm/s", 0.0, 100.0), ("bearing_temp", "degC", -40.0, 200.0),
           ("motor_current", "A", 0.0, 500.0), ("discharge_pressure", "bar", 0.0, 60.0),
           ("flow_rate", "m3/h", 0.0, 2000.0), ("speed", "rpm", 0.0, 10000.0),
           ("oil_temp", "degC", -40.0, 200.0), ("power", "kW", 0.0, 5000.0)]


def make_fleet(db, settings, uid: str, n: int = 3, *, sensors=SENSORS) -> dict[str, str]:
    """A model with ``sensors``, ``n`` assets with a device each; returns {device_id: secret}."""
    model = f"M-{uid}"
    db.execute("INSERT INTO product_models (model_id, name, category) VALUES (%s, %s, 'pump')",
               (model, model))
    with db.cursor() as cur:
        cur.executemany("INSERT INTO sensors (model_id, position, name, unit, min_value, max_value) "
                        "VALUES (%s, %s, %s, %s, %s, %s)",
                        [(model, i, *s) for i, s in enumerate(sensors)])
        cur.execute("INSERT INTO failure_modes (model_id, mode, mttr_h) VALUES (%s, 'bearing_wear', 4)",
                    (model,))
        cur.execute("INSERT INTO customers VALUES (%s, %s)", (f"C-{uid}", "Customer"))
        cur.execute("INSERT INTO sites (site_id, customer_id, name) VALUES (%s, %s, 'Site')",
                    (f"S-{uid}", f"C-{uid}"))
        cur.executemany(
            "INSERT INTO assets (asset_id, serial, model_id, customer_id, site_id, install_date) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [(f"A-{uid}-{i}", f"SN-{uid}-{i}", model, f"C-{uid}", f"S-{uid}", date(2024, 1, 1))
             for i in range(n)])
    return provision(settings, [(f"d-{uid}-{i}", f"A-{uid}-{i}") for i in range(n)])


def wait_for(cond, timeout: float = 30.0, every: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {value!r})")
        time.sleep(every)


def count_rows(db, device_ids) -> int:
    return db.execute("SELECT count(*) FROM telemetry WHERE device_id = ANY(%s)",
                      (list(device_ids),)).fetchone()[0]


class IngestThread:
    """An IngestWorker running in a thread of the test process (real broker, real database)."""

    def __init__(self, settings, **options):
        options.setdefault("retry", RetryPolicy(initial_s=0.05, cap_s=1.0, jitter=lambda: 1.0))
        options.setdefault("client_id", f"test-ingest-{os.getpid()}")
        options.setdefault("flush_ms", 50)
        self.worker = IngestWorker(settings, IngestOptions(**options))
        self.thread = threading.Thread(target=self.worker.run, kwargs={"ready": threading.Event()},
                                       daemon=True)

    def __enter__(self):
        ready = threading.Event()
        self.thread = threading.Thread(target=self.worker.run, kwargs={"ready": ready}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not ready.wait(0.1):
            assert self.thread.is_alive(), "ingest worker died while starting"
            assert time.monotonic() < deadline, "ingest worker did not connect"
        return self.worker

    def __exit__(self, *exc):
        self.worker.stop()
        self.thread.join(30)
        assert not self.thread.is_alive(), "ingest worker did not stop"


def start_ingest_process(settings, *args: str, client_id: str | None = None) -> subprocess.Popen:
    """``python -m ingest.cli ARGS`` as its own process with the world's settings."""
    env = settings_env(settings)
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.Popen([sys.executable, "-m", "ingest.cli", *args], env=env, cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)


def stop_process(proc: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 30) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
