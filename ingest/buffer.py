"""A bounded hand-off between the MQTT network thread and the writer thread.

``put`` blocks when the buffer is full, which stalls the MQTT network loop, which stops reading
the socket: the broker then holds the messages (backpressure instead of unbounded memory).
``take`` returns everything available up to ``n`` in one lock round.

>>> b = BoundedBuffer(2)
>>> b.put(1); b.put(2)
>>> b.take(10, timeout=0)
[1, 2]
>>> b.take(10, timeout=0.01)
[]
>>> b.put_many([3, 4, 5]); len(b)
3
"""

from __future__ import annotations

import threading
import time
from collections import deque


class BoundedBuffer:
    def __init__(self, maxsize: int):
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self.maxsize = maxsize
        self._items: deque = deque()
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self.blocked_s = 0.0                      # time producers spent waiting (backpressure)

    def _wait_for_room(self) -> None:
        """With the lock held: wait until the buffer is below ``maxsize``."""
        if len(self._items) >= self.maxsize:
            t0 = time.monotonic()
            while len(self._items) >= self.maxsize:
                self._not_full.wait()
            self.blocked_s += time.monotonic() - t0

    def put(self, item) -> None:
        with self._lock:
            self._wait_for_room()
            self._items.append(item)
            if len(self._items) == 1:
                self._not_empty.notify()

    def put_many(self, items: list) -> None:
        """Append ``items`` together, once the buffer has room (it may then exceed ``maxsize``
        by at most ``len(items)``: one read chunk)."""
        with self._lock:
            self._wait_for_room()
            was_empty = not self._items
            self._items.extend(items)
            if was_empty:
                self._not_empty.notify()

    def take(self, n: int, timeout: float | None = None) -> list:
        """Up to ``n`` items, waiting at most ``timeout`` s for the first one."""
        with self._lock:
            if not self._items and timeout != 0:
                self._not_empty.wait(timeout)
            items = self._items
            k = min(n, len(items))
            out = [items.popleft() for _ in range(k)]
            if k:
                self._not_full.notify_all()
            return out

    def __len__(self) -> int:
        return len(self._items)
