"""How detection prioritises the orders it proposes (the orders themselves are written by
:mod:`orders.state`): by the SLA tier in force and the predicted time to failure.

Priority 1 is the most urgent. Urgency from the predicted hours to failure (<24 h: 1, <72 h: 2,
<7 d: 3, <14 d: 4, else 5), then the contract: platinum one step more urgent, bronze or no
contract one step less.

>>> priority(tier_rank=1, hours_to_failure=100.0)
2
>>> priority(tier_rank=None, hours_to_failure=10.0)
2
>>> priority(tier_rank=3, hours_to_failure=None)
3
"""

from __future__ import annotations

from datetime import datetime, timedelta

URGENCY_H = (24.0, 72.0, 168.0, 336.0)


def priority(tier_rank: int | None, hours_to_failure: float | None) -> int:
    if hours_to_failure is None:
        base = 3
    else:
        base = 1 + sum(hours_to_failure >= h for h in URGENCY_H)
    adjust = {1: -1, 2: 0, 3: 0}.get(tier_rank, 1)
    return int(min(5, max(1, base + adjust)))


def respond_by(opened_at: datetime, response_h: float | None, predicted_failure_at: datetime | None,
               mttr_h: float | None) -> datetime:
    """The SLA response target, brought forward so the repair can finish before the failure."""
    target = opened_at + timedelta(hours=response_h if response_h else 72.0)
    if predicted_failure_at is not None:
        latest_start = predicted_failure_at - timedelta(hours=mttr_h or 0.0)
        target = min(target, max(latest_start, opened_at))
    return target
