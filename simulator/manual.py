"""What the manufacturer's documentation says about each product model, and nothing more: the
product knowledge :mod:`simulator.register` writes into the installed base.

A manufacturer knows from design and field experience which sensors a failure mode moves and
which way (a leaking seal lowers discharge pressure; a fouled cooler raises temperatures),
whether it shows as intermittent spikes (electrical faults), and the nominal repair time its
service manual lists. It does not know how large the shift is in a particular unit's noise, nor
how long repairs in the field really take: the platform learns those from its own history
(``prognos train``: failure-mode signatures; the MTTR model: repair times).

So the direction of a mode on a sensor is its sign only (+1 / -1), and the nominal MTTR is a
round figure from the service manual (workshop labour time for the task, without travel, access
or waiting), not the simulator's repair-time draw.

>>> from simulator.catalog import CATALOG
>>> pm = CATALOG["PMP-200"]
>>> directions(pm.mode("seal_leak"))
{'discharge_pressure': -1, 'flow_rate': -1, 'motor_current': -1}
>>> nominal_mttr_h(pm, pm.mode("bearing_wear"))
6.0
"""

from __future__ import annotations

#: The service manual's nominal repair time per product model and failure mode (hours):
#: round workshop figures. Field repairs take longer (travel, access, parts, waiting).
SERVICE_MANUAL_MTTR_H: dict[str, dict[str, float]] = {
    "PMP-200": {"bearing_wear": 6, "seal_leak": 4, "fouling": 3, "electrical": 4, "sudden": 8},
    "CMP-75": {"bearing_wear": 10, "seal_leak": 6, "fouling": 4, "electrical": 6, "sudden": 12},
    "CHL-500": {"bearing_wear": 16, "seal_leak": 12, "fouling": 8, "electrical": 12, "sudden": 24},
}


def directions(fm) -> dict[str, int]:
    """Which way the mode moves each sensor it moves: +1 up, -1 down (no magnitude)."""
    return {name: (1 if eff > 0 else -1) for name, eff in fm.effects.items() if eff}


def nominal_mttr_h(pm, fm) -> float:
    """The service manual's nominal repair time for the mode on this product model."""
    try:
        return float(SERVICE_MANUAL_MTTR_H[pm.model_id][fm.mode])
    except KeyError:
        raise KeyError(f"the service manual of {pm.model_id} lists no repair time for {fm.mode!r}") from None
