"""``prognos detect``: run the online detection service."""

from __future__ import annotations

import argparse
import signal
import threading

from prognos.config import Settings
from prognos.logs import setup_logging


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="prognos detect", description=__doc__)
    p.add_argument("--poll", type=float, default=1.0, help="seconds between polls when idle (default 1)")
    p.add_argument("--from-start", action="store_true",
                   help="with no checkpoint, process every batch ever ingested (default: from now on)")
    p.add_argument("--until-idle", action="store_true", help="stop once everything committed is processed")
    p.add_argument("--no-model", action="store_true", help="do not use trained failure models for timing")
    args = p.parse_args(argv)
    if args.poll <= 0:
        p.error("--poll must be > 0")
    setup_logging()
    from detection.service import DetectionService

    settings = Settings()
    loader = None
    if not args.no_model:
        from detection.prediction.store import load_latest
        loader = lambda model_id: load_latest(settings.model_dir, model_id)  # noqa: E731
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    svc = DetectionService(settings, predictor_loader=loader)
    try:
        svc.start(from_start=args.from_start)
        svc.run(poll_s=args.poll, stop=stop, until_idle=args.until_idle)
    finally:
        svc.close()
    return 0
