"""The ground-truth log: what really happened to every asset, as JSON Lines.

One object per event, ``{"t": RFC 3339, "asset_id", "device_id", "event", "mode", ...}`` with
``event`` one of :data:`EVENTS`.  The first line of a file written by a fleet is an
``inventory`` event listing every asset (so scores can be normalised per asset-month even
for assets without events).

>>> from datetime import datetime, timezone
>>> gt = GroundTruth()
>>> t = datetime(2026, 11, 1, tzinfo=timezone.utc)
>>> _ = gt.add(t, "a1", "d1", "onset", "bearing_wear", ttf_h=250.0)
>>> _ = gt.add(t.replace(day=12), "a1", "d1", "failure", "bearing_wear")
>>> [e["event"] for e in gt.of("a1")]
['onset', 'failure']
>>> gt.events[0]["t"]
'2026-11-01T00:00:00.000Z'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import orjson

EVENTS = (
    "inventory",
    "onset",
    "failure",
    "downtime_start",
    "downtime_end",
    "repair_start",
    "repair_end",
    "maintenance",
    "sensor_fault",
)


def rfc3339(t: datetime | float) -> str:
    """UTC time with milliseconds, the format of the telemetry contract.

    >>> rfc3339(0.0)
    '1970-01-01T00:00:00.000Z'
    """
    if not isinstance(t, datetime):
        t = datetime.fromtimestamp(float(t), tz=timezone.utc)
    t = t.astimezone(timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def parse_time(s: str | datetime) -> datetime:
    if isinstance(s, datetime):
        return s if s.tzinfo else s.replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def _plain(v):
    """NumPy scalars -> Python (JSON-ready, equal after a round trip)."""
    if hasattr(v, "item") and not isinstance(v, (list, dict, str)):
        return v.item()
    return v


@dataclass(frozen=True)
class Episode:
    """One degradation: onset until failure, maintenance or (None) still under way."""

    asset_id: str
    mode: str
    onset: datetime
    end: datetime | None
    ended_by: str | None  # 'failure' | 'maintenance' | None


class GroundTruth:
    def __init__(self, events: Iterable[dict] | None = None):
        self.events: list[dict] = list(events or [])

    def add(self, t: datetime | float, asset_id: str, device_id: str, event: str,
            mode: str | None = None, **detail) -> dict:
        if event not in EVENTS:
            raise ValueError(f"unknown ground-truth event {event!r}")
        ev = {"t": rfc3339(t), "asset_id": asset_id, "device_id": device_id, "event": event,
              "mode": mode}
        ev.update({k: _plain(v) for k, v in detail.items()})
        self.events.append(ev)
        return ev

    def __len__(self) -> int:
        return len(self.events)

    def of(self, asset_id: str) -> list[dict]:
        return [e for e in self.events if e["asset_id"] == asset_id]

    def sorted_events(self) -> list[dict]:
        return sorted(self.events, key=lambda e: (e["event"] != "inventory", e["t"]))

    @property
    def asset_ids(self) -> list[str]:
        for e in self.events:
            if e["event"] == "inventory":
                return list(e["asset_ids"])
        return sorted({e["asset_id"] for e in self.events if e["asset_id"]})

    def write_jsonl(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        with open(tmp, "wb") as f:
            for e in self.sorted_events():
                f.write(orjson.dumps(e))
                f.write(b"\n")
        tmp.replace(path)
        return path

    @classmethod
    def read_jsonl(cls, path: str | Path) -> GroundTruth:
        events = []
        with open(path, "rb") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    e = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{n}: not JSON: {exc}") from None
                if not isinstance(e, dict) or e.get("event") not in EVENTS or "t" not in e:
                    raise ValueError(f"{path}:{n}: not a ground-truth event")
                events.append(e)
        return cls(events)

    def failures(self) -> list[dict]:
        return [e for e in self.events if e["event"] == "failure"]

    def episodes(self) -> list[Episode]:
        """Degradations (predictable modes) from onset to failure/maintenance of that mode."""
        open_: dict[tuple[str, str], datetime] = {}
        out: list[Episode] = []
        for e in self.sorted_events():
            key = (e["asset_id"], e.get("mode"))
            if e["event"] == "onset":
                open_[key] = parse_time(e["t"])
            elif e["event"] == "failure" and key in open_:
                out.append(Episode(*key, open_.pop(key), parse_time(e["t"]), "failure"))
            elif e["event"] == "maintenance" and e.get("restored") and key in open_:
                out.append(Episode(*key, open_.pop(key), parse_time(e["t"]), "maintenance"))
            elif ((e["event"] == "maintenance" and e.get("kind") == "preventive")
                  or (e["event"] == "repair_end" and e.get("restored"))):
                for m in e.get("cleared", []) + e.get("restored", []):
                    k = (e["asset_id"], m)
                    if k in open_:
                        out.append(Episode(*k, open_.pop(k), parse_time(e["t"]), "maintenance"))
        out.extend(Episode(a, m, t, None, None) for (a, m), t in open_.items())
        return out
