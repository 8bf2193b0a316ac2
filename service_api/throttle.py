"""Throttling of failed authentication, per client address.

After ``limit`` failed authentications (missing, unknown, expired or revoked token) from one
address within ``window_s`` seconds, that address is refused with 429 and ``Retry-After``
until the oldest failure leaves the window; a successful authentication does not reset the
count (a guesser holding one valid token gains nothing). Counts are kept in the API process:
with ``--workers N`` each worker counts on its own, so the limit is per worker.

>>> t = AuthThrottle(limit=2, window_s=60)
>>> t.retry_after("10.0.0.1", now=0.0) is None
True
>>> t.failed("10.0.0.1", now=1.0); t.failed("10.0.0.1", now=2.0)
>>> t.retry_after("10.0.0.1", now=3.0)
58
>>> t.retry_after("10.0.0.2", now=3.0) is None, t.retry_after("10.0.0.1", now=61.5)
(True, None)
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

MAX_CLIENTS = 100_000


class AuthThrottle:
    def __init__(self, limit: int, window_s: float):
        self.limit, self.window_s = limit, window_s
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float] | None:
        q = self._fails.get(client)
        if q is not None:
            while q and q[0] <= now - self.window_s:
                q.popleft()
            if not q:
                del self._fails[client]
                return None
        return q

    def retry_after(self, client: str, *, now: float | None = None) -> int | None:
        """Seconds until ``client`` may try again, or None when it is not blocked."""
        now = time.monotonic() if now is None else now
        with self._lock:
            q = self._recent(client, now)
            if q is None or len(q) < self.limit:
                return None
            return max(1, math.ceil(q[0] + self.window_s - now))

    def failed(self, client: str, *, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._fails) >= MAX_CLIENTS:  # bound the memory a flood of addresses takes
                for c in list(self._fails)[: MAX_CLIENTS // 10]:
                    self._recent(c, now)
            q = self._recent(client, now)
            if q is None:
                q = self._fails[client] = deque()
            q.append(now)
