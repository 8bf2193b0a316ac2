"""A checkout in a folder only root may enter (a clone under /root, a 0700 ``mktemp -d``):
root starts Mosquitto, which drops to the ``mosquitto`` user, and the broker must still read
its config, password file and ACL, write its log and persist its sessions.

The checkout's files are copied (what ``git clone`` gives, plus uncommitted changes) into a
0700 temporary folder; the broker is started and restarted by that copy's own code, with its
own state folder and a free port; a device authenticates and publishes, and the ingest
account's persistent session keeps its messages across the restart.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from ops.services import mosquitto
from ops.services.common import SERVICE_ROOT, can_traverse, free_port, port_open
from prognos.config import settings_env
from schemas.telemetry import encode_readings, telemetry_topic
from simulator.publisher import FleetPublisher
from tests.test_ingest_support import IngestThread, count_rows, make_fleet, wait_for

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(os.geteuid() != 0, reason="only root's services drop to their own users"),
]


@pytest.fixture
def private_checkout():
    """A copy of the checkout in a fresh 0700 folder; removed afterwards."""
    top = Path(tempfile.mkdtemp(prefix="prognos-0700-"))
    assert stat.S_IMODE(top.stat().st_mode) == 0o700
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], check=True, capture_output=True).stdout
    clone = top / "prognos"
    for name in filter(None, files.decode().split("\0")):
        src = ROOT / name
        if src.is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, clone / name)
    try:
        yield clone
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _broker(clone: Path, env: dict, action: str) -> None:
    """Run ``mosquitto.start`` or ``stop`` with the copy's code and settings."""
    code = ("from prognos.config import Settings; from ops.services import mosquitto; "
            f"mosquitto.{action}(Settings())")
    subprocess.run([sys.executable, "-c", code], cwd=clone, env=dict(env, PYTHONPATH=str(clone)),
                   check=True, timeout=60, stdin=subprocess.DEVNULL)


def test_broker_runs_from_a_0700_checkout(settings, db, uid, private_checkout):
    clone = private_checkout
    s = settings.model_copy(update={"state_dir": clone / ".prognos", "mqtt_port": free_port()})
    assert not can_traverse("mosquitto", s.state_dir)
    # what an earlier, failed start left in the checkout is moved along
    s.mqtt_dir.mkdir(parents=True)
    (s.mqtt_dir / "left-over").write_text("x")
    env = settings_env(s)
    creds = make_fleet(db, s, uid, n=1)
    dev = next(iter(creds))
    folder = None
    try:
        _broker(clone, env, "start")
        assert port_open(s.mqtt_host, s.mqtt_port)
        folder = s.mqtt_dir.resolve()
        assert s.mqtt_dir.is_symlink() and folder.parent == SERVICE_ROOT.resolve()
        assert (folder / "left-over").exists()
        assert folder.owner() == "mosquitto" and can_traverse("mosquitto", folder)
        t0 = time.time() - 60
        with IngestThread(s):                  # the ingest account's persistent session
            pass
        with FleetPublisher(s, creds) as pub:  # the device authenticates; nobody is reading
            for i in range(5):
                pub.publish_raw(dev, telemetry_topic(dev),
                                encode_readings([(t0 + i, {"speed": float(i)})]))
            assert pub.flush(30)
        _broker(clone, env, "stop")            # the session and its queue go to disk
        assert (folder / "data" / "mosquitto.db").exists()
        _broker(clone, env, "start")
        with IngestThread(s):
            wait_for(lambda: count_rows(db, [dev]) == 5, what="5 rows queued across the restart")
        log = (folder / "mosquitto.log").read_text()
        assert "Unable to open" not in log, log         # config, pwfile, acl, log, data
    finally:
        mosquitto.remove(s)
    assert folder is not None and not folder.exists() and not s.mqtt_dir.exists()
