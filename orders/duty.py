"""Confirmed changes of an asset's duty: the one writer of table ``duty_changes``.

A planner who knows that an asset now runs a different duty (a new process, load profile, set
point, or a move) records it with a reason; the readings that follow are that asset's new
normal, not a fault. Detection reads the records through :func:`orders.feedback.rebaselines`
(with the planners' false alarms) and re-baselines every sensor of the asset: its detectors
learn the new normal from the next readings, and the evidence of every failure mode starts
over. Nothing is silenced: a fault that develops under the new duty is detected as before.

>>> DutyChange(1, "a-1", datetime(2026, 12, 1, tzinfo=timezone.utc), "new process", "planner:p").asset_id
'a-1'
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from prognos.logs import event

log = logging.getLogger("prognos.orders.duty")

#: Longest reason accepted (the table's check).
MAX_REASON = 500


@dataclass(frozen=True)
class DutyChange:
    id: int
    asset_id: str
    at: datetime            # when the new duty began
    reason: str
    actor: str
    recorded_at: datetime | None = None


_COLUMNS = "id, asset_id, at, reason, actor, recorded_at"


def record(conn, asset_id: str, reason: str, *, actor: str, at: datetime | None = None) -> DutyChange:
    """Record a confirmed change of duty of ``asset_id`` (``at``: when it began, default now).
    Raises ``LookupError`` for an unknown asset and ``ValueError`` for an empty or too long
    reason or a time without a time zone; nothing is written then."""
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_REASON:
        raise ValueError(f"reason must be 1-{MAX_REASON} characters")
    if at is not None and at.tzinfo is None:
        raise ValueError("at must have a time zone")
    at = at or datetime.now(timezone.utc)
    if conn.execute("SELECT 1 FROM assets WHERE asset_id = %s", (asset_id,)).fetchone() is None:
        raise LookupError(f"no asset {asset_id!r}")
    row = conn.execute(f"INSERT INTO duty_changes (asset_id, at, reason, actor) VALUES (%s, %s, %s, %s) "
                       f"RETURNING {_COLUMNS}", (asset_id, at, reason, actor)).fetchone()
    event(log, "duty_change_recorded", asset=asset_id, id=row[0], at=at.isoformat(), actor=actor)
    return DutyChange(*row)


def for_asset(conn, asset_id: str, limit: int = 50) -> list[DutyChange]:
    """The asset's duty changes, newest first."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM duty_changes WHERE asset_id = %s ORDER BY at DESC, id DESC "
                        f"LIMIT %s", (asset_id, limit)).fetchall()
    return [DutyChange(*r) for r in rows]


def since(conn, after_id: int = 0, limit: int = 10_000) -> list[DutyChange]:
    """Duty changes recorded after id ``after_id``, oldest first (detection's reader)."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM duty_changes WHERE id > %s ORDER BY id LIMIT %s",
                        (after_id, limit)).fetchall()
    return [DutyChange(*r) for r in rows]
