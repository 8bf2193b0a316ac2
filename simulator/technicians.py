"""The simulated field service organisation: technicians per region and what they change
about a repair's duration.

Each region has a roster of ``PER_REGION`` technicians with a skill level 1 (junior) .. 3
(expert) drawn with :data:`SKILL_P`; a repair goes to a technician of the asset's region
(uniformly, from the asset's own random stream), and the hands-on part of the repair time is
multiplied by :data:`SKILL_FACTOR` of that technician's level and by :data:`SHIFT_FACTOR`
(work started in business hours, 08-18 local Monday to Friday, goes faster than at night or at
the weekend).  Waiting for parts is not scaled.

What a technician records on the repair (and the platform may learn from) is
:data:`OBSERVED`; the factors drawn stay in the simulator's ground truth (``drawn``).

>>> r = roster(["north", "south"], seed=1)
>>> len(r["north"]), sorted({t.skill for ts in r.values() for t in ts}) <= [1, 2, 3]
(6, True)
>>> r["north"][0].tech_id
'sim-t-north-0'
>>> shift_factor(datetime(2026, 3, 2, 10, tzinfo=timezone.utc).timestamp(), 0.0)   # Monday 10:00
0.9
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

PER_REGION = 6
SKILL_P = (0.25, 0.5, 0.25)                 # levels 1, 2, 3
SKILL_FACTOR = {1: 1.3, 2: 1.0, 3: 0.75}    # hands-on time multiplier per level
SHIFT_FACTOR = {True: 0.9, False: 1.1}      # in business hours / outside them
OBSERVED = ("technician_id", "skill_level", "parts_on_hand", "region")


@dataclass(frozen=True)
class Technician:
    tech_id: str
    region: str
    skill: int


def roster(regions, seed: int, per_region: int | dict[str, int] = PER_REGION,
           prefix: str = "sim") -> dict[str, list[Technician]]:
    """``{region: [Technician, ...]}``, reproducible from ``seed`` (its own random stream, so
    the fleet's other draws do not move); ``per_region`` one count for all or one per region.

    >>> {reg: len(ts) for reg, ts in roster(["north", "south"], 1, {"north": 2, "south": 3}).items()}
    {'north': 2, 'south': 3}
    """
    rng = np.random.default_rng([int(seed), 11])
    count = per_region if isinstance(per_region, dict) else dict.fromkeys(regions, per_region)
    return {reg: [Technician(f"{prefix}-t-{reg}-{k}", reg, int(rng.choice(3, p=SKILL_P)) + 1)
                  for k in range(count[reg])] for reg in regions}


def business_hours(t: float, tz_h: float) -> bool:
    """Whether simulated time ``t`` (epoch seconds) is 08-18 local on a weekday."""
    local = t / 3600.0 + tz_h
    hod = local % 24.0
    dow = (local // 24.0 + 3.0) % 7.0          # 1970-01-01 was a Thursday; Monday = 0
    return bool(dow < 5 and 8.0 <= hod < 18.0)


def shift_factor(t: float, tz_h: float) -> float:
    return SHIFT_FACTOR[business_hours(t, tz_h)]


def visit(techs: list[Technician], rng: np.random.Generator, start_t: float, tz_h: float) -> tuple[Technician, float, dict]:
    """Who does a repair starting at ``start_t`` and the factor on its hands-on time;
    returns ``(technician, factor, drawn)`` with ``drawn`` the true factors (ground truth)."""
    tech = techs[int(rng.integers(len(techs)))]
    skill_f, shift_f = SKILL_FACTOR[tech.skill], shift_factor(start_t, tz_h)
    return tech, skill_f * shift_f, {"skill_factor": skill_f, "shift_factor": shift_f}


def record(tech: Technician, parts_on_hand: bool) -> dict:
    """What the technician records on the repair (:data:`OBSERVED`)."""
    return {"technician_id": tech.tech_id, "skill_level": tech.skill,
            "parts_on_hand": bool(parts_on_hand), "region": tech.region}


# -- field service: where technicians live and which repairs they are trained for (the scheduler's
#    closed loop, benchmarks.schedule_fleet). Own random streams: the fleet's draws do not move.

TRAINED_P = 0.85          # chance a technician is trained on a given (model, mode)


def homes(techs: dict[str, list[Technician]], centres: dict[str, tuple[float, float]], seed: int,
          spread_deg: tuple[float, float] = (0.15, 0.2)) -> dict[str, tuple[float, float]]:
    """Home base of each technician, scattered around the region's centre."""
    rng = np.random.default_rng([int(seed), 12])
    return {t.tech_id: (round(float(centres[reg][0] + rng.normal(0, spread_deg[0])), 5),
                        round(float(centres[reg][1] + rng.normal(0, spread_deg[1])), 5))
            for reg, ts in techs.items() for t in ts}


def trained(techs: dict[str, list[Technician]], pairs: list[tuple[str, str]], seed: int,
            needed: dict[str, int] | None = None) -> dict[str, dict[tuple[str, str], int]]:
    """``{tech_id: {(model_id, mode): level}}``: each technician is trained on a pair with
    probability :data:`TRAINED_P`, at their skill level; in every region the most skilled
    technician also covers any pair nobody there can do at the level it ``needed``."""
    rng = np.random.default_rng([int(seed), 13])
    needed = needed or {}
    out = {t.tech_id: {p: t.skill for p in pairs if rng.random() < TRAINED_P}
           for ts in techs.values() for t in ts}
    for ts in techs.values():
        best = max(ts, key=lambda t: t.skill)
        for p in pairs:
            if not any(out[t.tech_id].get(p, 0) >= needed.get(p[1], 1) for t in ts):
                out[best.tech_id][p] = max(best.skill, needed.get(p[1], 1))
    return out
