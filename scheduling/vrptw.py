"""Standard VRPTW instances (Solomon, Gehring-Homberger text format) as :class:`~scheduling.solver.Problem`.

The instances measure the solver the planner uses; they are read from
``../shared/datasets/vrptw`` and never copied into the repository.

Travel time equals Euclidean distance in double precision. The solver works in integers, so
coordinates are scaled by ``SCALE``: distances are rounded, durations rounded *up* (a schedule
feasible in integer time is then feasible in exact time), and :func:`evaluate` recomputes the
cost and checks every window and capacity in double precision.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scheduling.solver import Job, Problem, Result, Vehicle

SCALE = 1000
DEFAULT_ROOT = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "vrptw"


@dataclass
class Instance:
    name: str
    family: str          # solomon | homberger_200
    klass: str           # C1 C2 R1 R2 RC1 RC2
    vehicles: int
    capacity: int
    xy: np.ndarray       # (n+1, 2), row 0 = depot
    demand: np.ndarray
    ready: np.ndarray
    due: np.ndarray
    service: np.ndarray

    @property
    def euclid(self) -> np.ndarray:
        d = self.xy[:, None, :] - self.xy[None, :, :]
        return np.sqrt((d ** 2).sum(-1))


def read(path: Path, family: str) -> Instance:
    lines = [ln.split() for ln in Path(path).read_text().splitlines()]
    try:
        name = lines[0][0]
        vi = next(i for i, ln in enumerate(lines) if ln and ln[0] == "NUMBER")
        vehicles, capacity = int(lines[vi + 1][0]), int(lines[vi + 1][1])
        ci = next(i for i, ln in enumerate(lines) if ln and ln[0] == "CUST")
        rows = np.array([[float(x) for x in ln] for ln in lines[ci + 1:] if len(ln) == 7])
    except (StopIteration, IndexError, ValueError) as exc:
        raise ValueError(f"{path}: not a Solomon-format VRPTW instance ({exc})") from exc
    if rows.shape[0] < 2 or rows[0, 0] != 0:
        raise ValueError(f"{path}: no depot row (customer 0)")
    m = re.match(r"(RC|R|C)([12])", name.upper())
    if not m:
        raise ValueError(f"{path}: cannot tell the class from the name {name!r}")
    return Instance(name=name, family=family, klass=m.group(1) + m.group(2), vehicles=vehicles,
                    capacity=capacity, xy=rows[:, 1:3], demand=rows[:, 3].astype(int),
                    ready=rows[:, 4], due=rows[:, 5], service=rows[:, 6])


def to_problem(inst: Instance, hierarchical: bool) -> Problem:
    """Distance-only objective, or the literature's hierarchical one (fewest vehicles first,
    approximated by a fixed cost per vehicle larger than any route set's total distance)."""
    e = inst.euclid * SCALE
    dist = np.rint(e).astype(np.int64)
    dur = np.ceil(e - 1e-9).astype(np.int64)
    fixed = int(dist.sum()) if hierarchical else 0
    due0 = int(round(inst.due[0] * SCALE))
    vehicles = [Vehicle(start=0, end=0, tw_early=0, tw_late=due0, capacity=inst.capacity, fixed_cost=fixed)
                for _ in range(inst.vehicles)]
    jobs = [Job(point=i, service=int(round(inst.service[i] * SCALE)), tw_early=int(round(inst.ready[i] * SCALE)),
                tw_late=int(round(inst.due[i] * SCALE)), demand=int(inst.demand[i]))
            for i in range(1, len(inst.xy))]
    return Problem(distance=dist, duration=dur, jobs=jobs, vehicles=vehicles)


def routes_of(result: Result) -> list[list[int]]:
    return [[v.job for v in r.visits] for r in result.routes]


def evaluate(inst: Instance, routes: list[list[int]]) -> tuple[float, int, list[str]]:
    """Exact (double precision) total distance, routes used and any violations of ``routes``
    (lists of job indices, as :func:`routes_of` gives them)."""
    e = inst.euclid
    total, problems, used = 0.0, [], 0
    seen = []
    for r in routes:
        if not r:
            continue
        used += 1
        path = [0] + [k + 1 for k in r] + [0]
        t, load = 0.0, 0
        for a, b in zip(path, path[1:]):
            total += e[a, b]
            t = max(t + e[a, b], inst.ready[b])
            if t > inst.due[b] + 1e-6:
                problems.append(f"{inst.name}: customer {b} reached at {t:.3f} > due {inst.due[b]}")
            t += inst.service[b]
            load += inst.demand[b]
        if load > inst.capacity:
            problems.append(f"{inst.name}: route load {load} > capacity {inst.capacity}")
        seen += path[1:-1]
    if sorted(seen) != list(range(1, len(inst.xy))):
        problems.append(f"{inst.name}: {len(inst.xy) - 1 - len(set(seen))} customers not served once")
    return total, used, problems
