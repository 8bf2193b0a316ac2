"""The routing solver behind every schedule: a vehicle routing problem with time windows, solved
by PyVRP (hybrid genetic search / iterated local search, MIT).

The planner (technicians and orders) and ``benchmarks.schedule`` (Solomon, Gehring-Homberger)
both build a :class:`Problem` and call :func:`solve`; nothing else talks to PyVRP.

What the problem holds, in integer units chosen by the caller (the planner uses metres and
seconds; the benchmark scales the instances' Euclidean distances by 1000):

- ``distance`` / ``duration``: square matrices over *points* (depots and job sites).
- :class:`Job`: a visit at a point with a service time, an arrival window, a demand, and either
  required, or optional with a ``prize`` (PyVRP's prize-collecting objective: an optional job is
  visited when its prize outweighs the travel it costs). ``requires`` is a set of tags the
  vehicle must carry (skills, territory, a pin to one technician).
- :class:`Vehicle`: start and end points, shift window, capacity, ``tags``. Each technician-day
  is one vehicle.
- Alternatives: optional jobs with the same ``alternatives`` key form a PyVRP mutually
  exclusive client group (at most one is visited), e.g. an on-time and a late version of a
  visit with different windows and prizes.
- Stability: ``Job.preferred_group`` and ``Job.change_penalty``: serving the job with a vehicle
  whose ``group`` differs costs the penalty (re-planning moves few orders between technicians).

How the constraints map onto PyVRP, which has no skills field: every distinct tag is a load
dimension; a job requiring tag *t* delivers ``TAG_UNIT`` in that dimension, a vehicle carrying
*t* has room for every job, one that does not has room for none. Load is a hard constraint in
PyVRP's final solution (excess is only tolerated, penalised, during the search), so a job can
only end up on a vehicle carrying all its tags. The change penalty is per (job, group), which an
arc cost can express exactly because each job has its own location and is entered once: each
group gets a routing profile whose distances into other groups' preferred jobs carry the penalty.

>>> import numpy as np
>>> d = np.array([[0, 1, 2], [1, 0, 1], [2, 1, 0]])
>>> p = Problem(distance=d, duration=d, vehicles=[Vehicle(start=0, end=0)],
...             jobs=[Job(point=1), Job(point=2)])
>>> r = solve(p, time_limit=0.2)
>>> r.distance, sorted(v.job for route in r.routes for v in route.visits), r.unassigned
(4, [0, 1], [])
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pyvrp
from pyvrp.stop import MaxIterations, MaxRuntime, MultipleCriteria, NoImprovement

BIG = 1 << 40
TAG_UNIT = 1000          # load units per tag: one violated tag outweighs any prize
MAX_PROFILE_BYTES = 512 << 20   # memory for the per-group distance matrices of the change penalty
MAX_PENALTY = 1e6        # PyVRP's penalty bound, raised from 1e5 for the same reason


@dataclass(frozen=True)
class Job:
    point: int
    service: int = 0
    tw_early: int = 0
    tw_late: int = BIG
    demand: int = 0
    required: bool = True
    prize: int = 0
    requires: frozenset[str] = frozenset()
    preferred_group: object = None
    change_penalty: int = 0
    alternatives: object = None   # jobs sharing this key are alternatives: at most one is visited


@dataclass(frozen=True)
class Vehicle:
    start: int
    end: int
    tw_early: int = 0
    tw_late: int = BIG
    capacity: int | None = None
    tags: frozenset[str] = frozenset()
    group: object = None
    fixed_cost: int = 0
    shift_duration: int = BIG     # route duration beyond this is overtime...
    max_overtime: int = 0         # ...up to this much (``tw_late`` must leave room for it)...
    overtime_cost: int = 0        # ...at this cost per time unit


@dataclass
class Problem:
    distance: np.ndarray
    duration: np.ndarray
    jobs: list[Job]
    vehicles: list[Vehicle]

    def __post_init__(self) -> None:
        self.distance = np.asarray(self.distance, dtype=np.int64)
        self.duration = np.asarray(self.duration, dtype=np.int64)
        n = self.distance.shape[0]
        if self.distance.shape != (n, n) or self.duration.shape != (n, n):
            raise ValueError(f"distance and duration must be square and equal in shape, got "
                             f"{self.distance.shape} and {self.duration.shape}")
        if not self.vehicles:
            raise ValueError("a problem needs at least one vehicle")
        for j in self.jobs:
            if not 0 <= j.point < n:
                raise ValueError(f"job point {j.point} outside the {n} matrix points")
            if j.alternatives is not None and j.required:
                raise ValueError(f"job at point {j.point}: alternatives must be optional jobs")
            if j.tw_early > j.tw_late:
                raise ValueError(f"job at point {j.point}: window [{j.tw_early}, {j.tw_late}] is empty")
        for v in self.vehicles:
            if not (0 <= v.start < n and 0 <= v.end < n):
                raise ValueError(f"vehicle start/end {v.start}/{v.end} outside the {n} matrix points")


@dataclass(frozen=True)
class Visit:
    job: int
    start: int        # service start
    end: int          # service end
    arrival: int      # arrival at the site (start - wait)
    travel: int       # travel duration from the previous stop


@dataclass
class RouteResult:
    vehicle: int
    visits: list[Visit]
    start: int
    end: int
    distance: int
    travel: int


@dataclass
class Result:
    routes: list[RouteResult]
    unassigned: list[int]
    distance: int
    cost: int
    feasible: bool
    seconds: float
    iterations: int
    changed: list[int] = field(default_factory=list)   # jobs served outside their preferred group


def _build(p: Problem) -> tuple[pyvrp.ProblemData, list[int]]:
    depot_points = sorted({v.start for v in p.vehicles} | {v.end for v in p.vehicles})
    depot_index = {pt: i for i, pt in enumerate(depot_points)}
    # Locations: depots first, then one per job (jobs at the same site get their own location,
    # so that a per-job arc cost is exact).
    points = depot_points + [j.point for j in p.jobs]
    idx = np.asarray(points)
    dist = p.distance[np.ix_(idx, idx)]
    dur = p.duration[np.ix_(idx, idx)]

    tags = sorted(set().union(*(j.requires for j in p.jobs)) if p.jobs else set())
    has_demand = any(j.demand for j in p.jobs) or any(v.capacity is not None for v in p.vehicles)
    n_jobs = len(p.jobs)
    dims = (["demand"] if has_demand else []) + tags

    def vehicle_capacity(v: Vehicle) -> list[int]:
        cap = []
        if has_demand:
            cap.append(v.capacity if v.capacity is not None else BIG)
        cap += [TAG_UNIT * n_jobs if t in v.tags else 0 for t in tags]
        return cap

    def job_delivery(j: Job) -> list[int]:
        d = [j.demand] if has_demand else []
        return d + [TAG_UNIT if t in j.requires else 0 for t in tags]

    # Routing profiles: one, unless some jobs prefer a vehicle group.
    preferred = [(k, j) for k, j in enumerate(p.jobs) if j.preferred_group is not None and j.change_penalty]
    n_groups = len({v.group for v in p.vehicles})
    if preferred and n_groups * len(points) ** 2 * 8 > MAX_PROFILE_BYTES:
        preferred = []          # one matrix per technician would not fit: plan without the penalty
    vgroups = sorted({v.group for v in p.vehicles}, key=repr) if preferred else [None]
    profile_of_group = {g: i for i, g in enumerate(vgroups)}
    dist_mats = []
    for g in vgroups:
        m = dist.copy()
        for k, j in preferred:
            if j.preferred_group != g:
                col = len(depot_points) + k
                m[:, col] += j.change_penalty
                m[col, col] = 0
        dist_mats.append(m)
    dur_mats = [dur] * len(vgroups)

    alt_keys = sorted({j.alternatives for j in p.jobs if j.alternatives is not None}, key=repr)
    alt_index = {key: g for g, key in enumerate(alt_keys)}
    groups = [pyvrp.ClientGroup([k for k, j in enumerate(p.jobs) if j.alternatives == key], required=False)
              for key in alt_keys]
    locations = [pyvrp.Location(x=0, y=0) for _ in points]
    depots = [pyvrp.Depot(location=i) for i in range(len(depot_points))]
    clients = [pyvrp.Client(location=len(depot_points) + k, delivery=job_delivery(j),
                            service_duration=int(j.service), tw_early=int(j.tw_early),
                            tw_late=int(j.tw_late), prize=int(j.prize), required=j.required,
                            group=alt_index.get(j.alternatives) if j.alternatives is not None else None)
               for k, j in enumerate(p.jobs)]
    vtypes = [pyvrp.VehicleType(num_available=1, capacity=vehicle_capacity(v),
                                start_depot=depot_index[v.start], end_depot=depot_index[v.end],
                                tw_early=int(v.tw_early), tw_late=int(v.tw_late),
                                fixed_cost=int(v.fixed_cost), shift_duration=int(v.shift_duration),
                                max_overtime=int(v.max_overtime), unit_overtime_cost=int(v.overtime_cost),
                                profile=profile_of_group[v.group] if preferred else 0)
              for v in p.vehicles]
    data = pyvrp.ProblemData(locations=locations, clients=clients, depots=depots, vehicle_types=vtypes,
                             distance_matrices=dist_mats, duration_matrices=dur_mats, groups=groups)
    return data, depot_points


def solve(p: Problem, time_limit: float | None = None, seed: int = 0, patience: int | None = None,
          max_iterations: int | None = None) -> Result:
    """Solve within ``time_limit`` seconds (wall clock) and/or ``max_iterations`` search
    iterations, or sooner after ``patience`` iterations without improvement, and return the
    best feasible solution. With ``max_iterations`` and no ``time_limit`` the result depends only
    on the problem and ``seed``, not on the machine or its load (the closed-loop benchmark
    plans this way, so two runs of one stream give the same figures).

    Raises ``RuntimeError`` when PyVRP found no feasible solution (required jobs that cannot be
    served): callers make jobs optional when they may be left out.
    """
    if time_limit is None and max_iterations is None:
        raise ValueError("solve needs a time_limit, a max_iterations or both")
    t0 = time.perf_counter()
    data, depot_points = _build(p)
    params = pyvrp.SolveParams(penalty=pyvrp.PenaltyParams(max_penalty=MAX_PENALTY))
    stops = ([MaxRuntime(time_limit)] if time_limit is not None else []) + \
        ([MaxIterations(max_iterations)] if max_iterations is not None else []) + \
        ([NoImprovement(patience)] if patience is not None else [])
    stop = stops[0] if len(stops) == 1 else MultipleCriteria(stops)
    res = pyvrp.solve(data, stop=stop, seed=seed, collect_stats=False, display=False, params=params)
    seconds = time.perf_counter() - t0
    sol = res.best
    if not sol.is_feasible():
        raise RuntimeError("no feasible solution found: required jobs cannot all be served "
                           "within the windows, shifts, capacities and skills given")
    routes, served = [], set()
    for r in sol.routes():
        v = r.vehicle_type()
        visits, prev = [], p.vehicles[v].start
        for a in r.schedule():
            if not a.is_client():
                continue
            k = a.idx                      # client index, in job order
            pt = p.jobs[k].point
            visits.append(Visit(job=k, start=int(a.start_time), end=int(a.end_time),
                                arrival=int(a.start_time - a.wait_duration),
                                travel=int(p.duration[prev, pt])))
            prev = pt
            served.add(k)
        routes.append(RouteResult(vehicle=v, visits=visits, start=int(r.start_time()),
                                  end=int(r.end_time()),
                                  distance=int(_route_distance(p, v, [x.job for x in visits])),
                                  travel=int(r.travel_duration())))
    routes.sort(key=lambda r: r.vehicle)
    changed = [x.job for r in routes for x in r.visits
               if p.jobs[x.job].preferred_group is not None and p.jobs[x.job].change_penalty
               and p.jobs[x.job].preferred_group != p.vehicles[r.vehicle].group]
    return Result(routes=routes, unassigned=[k for k in range(len(p.jobs)) if k not in served],
                  distance=sum(r.distance for r in routes), cost=int(sol.distance_cost()),
                  feasible=True, seconds=seconds, iterations=int(res.num_iterations), changed=changed)


def _route_distance(p: Problem, vehicle: int, jobs: list[int]) -> int:
    v = p.vehicles[vehicle]
    pts = [v.start] + [p.jobs[k].point for k in jobs] + [v.end]
    return int(sum(p.distance[a, b] for a, b in zip(pts, pts[1:])))
