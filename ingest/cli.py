"""``prognos ingest [--workers N] [--batch-size B] [--flush-ms MS]``: MQTT -> TimescaleDB.

One worker runs in this process on a plain subscription with a persistent session. N > 1
workers run as N child processes on the shared subscription ``$share/ingest/...`` (telemetry;
worker 0 also takes the state topic, so a device's state events stay in order); this process
supervises them: a child that dies is restarted with backoff, SIGTERM/SIGINT stop all of them
cleanly (each flushes, commits and acks what it holds).
"""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
import threading
import time

from prognos.logs import event, setup_logging

log = logging.getLogger("prognos.ingest")


def _positive(kind):
    def conv(s: str):
        try:
            v = kind(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {s!r}") from None
        if v <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {s}")
        return v
    return conv


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="prognos ingest", description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=_positive(int), default=1, help="worker processes (default 1)")
    p.add_argument("--batch-size", type=_positive(int), default=5000,
                   help="messages per database transaction, at most (default 5000)")
    p.add_argument("--flush-ms", type=_positive(float), default=250.0,
                   help="longest a received message waits for its batch (default 250)")
    p.add_argument("--queue-size", type=_positive(int), default=20_000,
                   help="messages buffered between the MQTT loop and the writer (default 20000)")
    p.add_argument("--rollup-every-s", type=_positive(float), default=15.0)
    p.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    return p


def _run_worker(args, index: int) -> int:
    from ingest.worker import IngestOptions, IngestWorker
    from prognos.config import get_settings

    opts = IngestOptions(worker_index=index, workers=args.workers, batch_size=args.batch_size,
                         flush_ms=args.flush_ms, queue_size=args.queue_size,
                         rollup_every_s=args.rollup_every_s)
    worker = IngestWorker(get_settings(), opts)

    def _stop(signum, frame):
        worker.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return worker.run()


def _supervise(args) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def spawn(i: int) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "ingest.cli", "--workers", str(args.workers),
               "--batch-size", str(args.batch_size), "--flush-ms", str(args.flush_ms),
               "--queue-size", str(args.queue_size), "--rollup-every-s", str(args.rollup_every_s),
               "--worker-index", str(i)]
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL)

    children = {i: spawn(i) for i in range(args.workers)}
    restarts = dict.fromkeys(children, 0)
    event(log, "ingest_supervisor_started", workers=args.workers,
          pids=[c.pid for c in children.values()])
    while not stop.wait(0.5):
        for i, child in list(children.items()):
            rc = child.poll()
            if rc is not None:
                restarts[i] += 1
                delay = min(30.0, 0.5 * 2 ** min(restarts[i], 6))
                event(log, "ingest_worker_exited", level=logging.WARNING, worker=i, rc=rc,
                      restart_in_s=delay)
                if stop.wait(delay):
                    break
                children[i] = spawn(i)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for child in children.values():
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    if args.worker_index is not None:
        return _run_worker(args, args.worker_index)
    if args.workers == 1:
        return _run_worker(args, 0)
    return _supervise(args)


if __name__ == "__main__":
    sys.exit(main())
