"""The API served for real (uvicorn on a free port, in a thread of the test process), for the
browser tests and the schemathesis run."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from ops.services.common import free_port
from prognos.config import Settings
from service_api.app import create_app


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """Serve ``create_app(settings)``; yields its base URL, stops the server on exit."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_config=None, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    end = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > end or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
