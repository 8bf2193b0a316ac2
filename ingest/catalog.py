"""Device catalogue: device -> asset, model, the model's sensor positions and ranges and its
failure modes (which a repair's as-found report may name).

Loaded from ``devices``/``assets``/``sensors`` and refreshed in the background (every
``refresh_s``) and on a miss, with a negative cache so a flood of messages from an unknown
device costs at most one query per device and ``miss_ttl_s``.
"""

from __future__ import annotations

import time

import psycopg

from ingest.parse import DeviceInfo

_QUERY = """
SELECT d.device_id, d.asset_id, a.model_id, d.status,
       coalesce(array_agg(s.name ORDER BY s.position) FILTER (WHERE s.name IS NOT NULL), '{}'),
       coalesce(array_agg(s.position ORDER BY s.position) FILTER (WHERE s.name IS NOT NULL), '{}'),
       coalesce(array_agg(s.min_value ORDER BY s.position) FILTER (WHERE s.name IS NOT NULL), '{}'),
       coalesce(array_agg(s.max_value ORDER BY s.position) FILTER (WHERE s.name IS NOT NULL), '{}'),
       coalesce(array_agg(s.unit ORDER BY s.position) FILTER (WHERE s.name IS NOT NULL), '{}'),
       (SELECT coalesce(array_agg(f.mode ORDER BY f.mode), '{}') FROM failure_modes f WHERE f.model_id = a.model_id)
FROM devices d
JOIN assets a USING (asset_id)
LEFT JOIN sensors s ON s.model_id = a.model_id
{where}
GROUP BY d.device_id, d.asset_id, a.model_id, d.status
"""


def _info(row) -> DeviceInfo:
    device_id, asset_id, model_id, status, names, positions, lo, hi, units, modes = row
    width = (max(positions) + 1) if positions else 0
    los = [float("inf")] * width           # a gap in positions accepts nothing there
    his = [float("-inf")] * width
    for p, a, b in zip(positions, lo, hi):
        los[p], his[p] = a, b
    return DeviceInfo(device_id, asset_id, model_id, dict(zip(names, positions)),
                      tuple(los), tuple(his), status == "active", dict(zip(names, units)), tuple(modes))


class DeviceCatalog:
    def __init__(self, dsn: str, *, refresh_s: float = 30.0, miss_ttl_s: float = 5.0):
        self.dsn = dsn
        self.refresh_s = refresh_s
        self.miss_ttl_s = miss_ttl_s
        self._devices: dict[str, DeviceInfo] = {}
        self._misses: dict[str, float] = {}
        self._loaded_at = 0.0

    def load(self, conn: psycopg.Connection) -> int:
        rows = conn.execute(_QUERY.replace("{where}", "")).fetchall()
        self._devices = {r[0]: _info(r) for r in rows}
        self._misses.clear()
        self._loaded_at = time.monotonic()
        return len(self._devices)

    def maybe_refresh(self, conn: psycopg.Connection) -> None:
        if time.monotonic() - self._loaded_at > self.refresh_s:
            self.load(conn)

    def get(self, device_id: str, conn: psycopg.Connection | None = None) -> DeviceInfo | None:
        """The device, or None if it does not exist (asks the database on a miss)."""
        info = self._devices.get(device_id)
        if info is not None or conn is None:
            return info
        now = time.monotonic()
        if now - self._misses.get(device_id, -1e9) < self.miss_ttl_s:
            return None
        row = conn.execute(_QUERY.replace("{where}", "WHERE d.device_id = %s"), (device_id,)).fetchone()
        if row is None:
            self._misses[device_id] = now
            if len(self._misses) > 100_000:
                self._misses.clear()
            return None
        info = self._devices[device_id] = _info(row)
        return info

    def __len__(self) -> int:
        return len(self._devices)
