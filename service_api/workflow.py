"""The service order life cycle: which status changes exist and which right each needs.

::

    open --schedule--> scheduled --start--> in_progress --complete--> completed
      \\                   |
       +----cancel---------+--> cancelled

Planning changes (``scheduled_for``, ``assignee``, ``priority``) need the ``schedule`` /
``assign`` rights and a live order (open, scheduled or in progress).

>>> transition_right("open", "scheduled")
'schedule'
>>> transition_right("scheduled", "in_progress")
'start'
>>> transition_right("completed", "open") is None
True
>>> right_for("completed")
'complete'
>>> allowed_next("scheduled")
['in_progress', 'cancelled']
"""

from __future__ import annotations

LIVE = ("open", "scheduled", "in_progress")

TRANSITIONS: dict[tuple[str, str], str] = {
    ("open", "scheduled"): "schedule",
    ("open", "cancelled"): "cancel",
    ("scheduled", "in_progress"): "start",
    ("scheduled", "cancelled"): "cancel",
    ("in_progress", "completed"): "complete",
}


def transition_right(current: str, new: str) -> str | None:
    """The right needed to move an order from ``current`` to ``new``; None if not allowed."""
    return TRANSITIONS.get((current, new))


def allowed_next(current: str) -> list[str]:
    return [new for (cur, new) in TRANSITIONS if cur == current]


def right_for(new: str) -> str:
    """The right needed to move any order to ``new`` (checked before whether it is possible)."""
    return {"scheduled": "schedule", "in_progress": "start", "completed": "complete",
            "cancelled": "cancel"}[new]
