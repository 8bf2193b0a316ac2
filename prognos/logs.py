"""Structured logs: one JSON object per line and event, on stderr.

>>> import io, json, logging
>>> buf = io.StringIO()
>>> log = get_logger("prognos.example", stream=buf)
>>> log.info("batch_committed", extra={"fields": {"rows": 10}})
>>> json.loads(buf.getvalue())["rows"]
10
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        out = {
            "ts": f"{ts}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        out.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, separators=(",", ":"))


def setup_logging(level: str | None = None) -> None:
    """Route the root logger to stderr as JSON lines (idempotent)."""
    root = logging.getLogger()
    level = level or os.environ.get("PROGNOS_LOG_LEVEL", "INFO")
    root.setLevel(level.upper())
    for h in root.handlers:
        if isinstance(h.formatter, JsonFormatter):
            return
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(JsonFormatter())
    root.addHandler(h)


def get_logger(name: str, stream=None) -> logging.Logger:
    log = logging.getLogger(name)
    if stream is not None:
        h = logging.StreamHandler(stream)
        h.setFormatter(JsonFormatter())
        log.addHandler(h)
        log.propagate = False
        log.setLevel(logging.INFO)
    return log


def event(logger: logging.Logger, name: str, /, level: int = logging.INFO, **fields) -> None:
    """Log one event with fields: ``event(log, "batch_committed", rows=10)``."""
    logger.log(level, name, extra={"fields": fields})
