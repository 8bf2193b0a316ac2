"""HMAC-SHA256 signatures of webhook deliveries: ``Prognos-Signature: t=<unix>,v1=<hex>``.

>>> header = sign("s" * 32, b'{"id": 1}', timestamp=1_700_000_000)
>>> header.startswith("t=1700000000,v1=")
True
>>> verify("s" * 32, b'{"id": 1}', header, now=1_700_000_010)
True
>>> verify("s" * 32, b'{"id": 2}', header, now=1_700_000_010)
False
>>> verify("s" * 32, b'{"id": 1}', header, now=1_700_001_000)  # older than the tolerance
False
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Prognos-Signature"
TOLERANCE_S = 300


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (default now)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_mac(secret, t, body)}"


def verify(secret: str, body: bytes, header: str, *, now: float | None = None,
           tolerance_s: int = TOLERANCE_S) -> bool:
    """True when ``header`` is a valid signature of ``body`` made within ``tolerance_s``."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance_s:
        return False
    return hmac.compare_digest(_mac(secret, t, body), parts.get("v1", ""))
