"""Baseline for the solver choice: OR-Tools routing on the same VRPTW problems
(``scheduling.solver.Problem`` built by ``scheduling.vrptw``), same integer scaling and time
limit: parallel cheapest insertion, then guided local search, the configuration OR-Tools
recommends for VRPTW. Only the plain VRPTW features (one depot, capacity, windows, service
times) are translated: the product runs PyVRP (``scheduling.solver``)."""

from __future__ import annotations

from scheduling.solver import Problem


def solve_routes(p: Problem, time_limit: float) -> list[list[int]] | None:
    """Routes as lists of job indices, or None when OR-Tools found no solution."""
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    depot = p.vehicles[0].start
    if any(v.start != depot or v.end != depot for v in p.vehicles):
        raise ValueError("the OR-Tools baseline handles one depot only")
    nodes = [depot] + [j.point for j in p.jobs]
    n, nv = len(nodes), len(p.vehicles)
    dist = p.distance[nodes][:, nodes]
    service = [0] + [j.service for j in p.jobs]
    travel = p.duration[nodes][:, nodes] + [[s] for s in service]       # service at the origin node
    man = pywrapcp.RoutingIndexManager(n, nv, 0)
    rt = pywrapcp.RoutingModel(man)
    rt.SetArcCostEvaluatorOfAllVehicles(rt.RegisterTransitMatrix(dist.tolist()))
    horizon = max(int(v.tw_late) for v in p.vehicles)
    rt.AddDimension(rt.RegisterTransitMatrix(travel.tolist()), horizon, horizon, False, "time")
    time_dim = rt.GetDimensionOrDie("time")
    for k, j in enumerate(p.jobs, start=1):
        time_dim.CumulVar(man.NodeToIndex(k)).SetRange(int(j.tw_early), int(j.tw_late))
    cap = [int(v.capacity) if v.capacity is not None else 10**9 for v in p.vehicles]
    rt.AddDimensionWithVehicleCapacity(rt.RegisterUnaryTransitVector([0] + [j.demand for j in p.jobs]),
                                       0, cap, True, "load")
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromMilliseconds(int(time_limit * 1000))
    sol = rt.SolveWithParameters(params)
    if sol is None:
        return None
    routes = []
    for v in range(nv):
        i, route = rt.Start(v), []
        while not rt.IsEnd(i):
            node = man.IndexToNode(i)
            if node:
                route.append(node - 1)
            i = sol.Value(rt.NextVar(i))
        routes.append(route)
    return routes
