"""Scheduling benchmark: the routing solver on standard VRPTW instances, and the planner in a
closed loop on a simulated fleet against a greedy dispatcher.

    python -m benchmarks.schedule [--quick] --json PATH [--data ../shared/datasets/vrptw]
        [--part vrptw|fleet|all] [--instances C101,R2*,...] [--time-limits 10,60]
        [--homberger N] [--ortools] [--days N] [--seed N]
        [--loop-iterations N | --loop-seconds S] [--fleets demo,fleet2000,...]
        [--seeds 6,8,9 [--against PATH]] [--learned-service]

Solver quality: every instance goes through ``scheduling.solver.solve``, the wrapper the
planner uses. Solomon (56 instances, all six classes) is solved with the distance-only
objective and compared with the best-known distance-only solutions (``<name>_distance`` in
``BKS.json``); Gehring-Homberger 200 is solved with the literature's hierarchical objective
(fewest vehicles first: a fixed cost per vehicle) and compared with the plain keys, with the
vehicle count reported next to the gap (a cheaper solution with more vehicles does not count
as better). Costs are recomputed and every window and capacity checked in double precision.
``--homberger N`` takes the first N instances of each Gehring-Homberger class (0: none).
``--quick``: one Solomon instance per class at 2 s and 5 s, no Gehring-Homberger.
``--ortools`` also solves each Solomon instance with OR-Tools routing under the same limit (the
baseline of the solver choice, ``benchmarks.schedule_ortools``).
One run writes every key the checks read (``solomon_gap_10s_mean``, ``solomon_gap_60s_mean``,
``per_class``, ``travel_ratio_vs_greedy``, ``sla_response_compliance``,
``greedy_sla_response_compliance``, ``plan_seconds_2000_assets``); ``--quick`` is the same run
with short limits (its solver keys are named for its limits, ``solomon_gap_2s_mean`` ...) and a
5-day closed loop. ``--seed`` picks the simulated fleet (default 5, the scoring stream; the
planner was developed on seeds 11 and 6). The closed loop's plans stop after
``--loop-iterations`` solver iterations (default ``schedule_fleet.PLAN_ITERATIONS``), so two
runs of one seed give the same figures on any machine; ``--loop-seconds`` restores a
wall-clock limit. ``--fleets`` runs a subset of the closed-loop setups.

``--seeds 6,8,9`` judges a planner change on several fleets at once (the development harness,
``schedule_fleet.run_seeds``): the 2,000-asset closed loop (or the one setup ``--fleets`` names)
on each seed, planner and greedy in the same run, per seed and over the seeds (mean and worst
travel ratio, smallest SLA response margin over the greedy, km by leg); ``--against PATH``, an
earlier ``--seeds`` run of the same seeds, adds each seed's planner km change against it and
their mean. Development seeds are 6, 8, 9 (``schedule_fleet.DEV_SEEDS``); scoring seeds are run
one at a time with ``--seed``. ``--learned-service``: in the closed loop the planner books the
loop's own learned repair time per failure mode (``schedule_fleet.mode_factors``), as the
product books its MTTR model's prediction, instead of the service manual's (the default).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from benchmarks.common import write
from scheduling.solver import solve
from scheduling.vrptw import DEFAULT_ROOT, evaluate, read, routes_of, to_problem

QUICK_SOLOMON = ["C101", "C201", "R101", "R201", "RC101", "RC201"]
CLASSES = ["C1", "C2", "R1", "R2", "RC1", "RC2"]


def run_vrptw(root: Path, names: list[str] | None, limits: list[float], homberger: int,
              quick: bool, seed: int = 1, ortools: bool = False) -> dict:
    bks = json.loads((root / "BKS.json").read_text())
    files = [("solomon", p) for p in sorted((root / "solomon").glob("*.txt"))]
    hg = sorted((root / "homberger_200").glob("*.txt"), key=lambda p: _hg_key(p.stem))
    per_cls: dict[str, list[Path]] = {}
    for p in hg:
        per_cls.setdefault(p.stem.split("_")[0].upper(), []).append(p)
    files += [("homberger_200", p) for ps in per_cls.values() for p in ps[:homberger]]
    if quick and not names:
        names = QUICK_SOLOMON
    if names:
        files = [(f, p) for f, p in files if any(fnmatch.fnmatch(p.stem.upper(), n.upper()) for n in names)]
    if not files:
        raise ValueError(f"no instance under {root} matches {names}")
    rows = []
    bar = tqdm(total=len(files) * len(limits), desc="vrptw", unit="solve")
    for family, path in files:
        inst = read(path, family)
        hier = family != "solomon"
        key = inst.name if hier else f"{inst.name}_distance"
        best = bks[key]
        prob = to_problem(inst, hierarchical=hier)
        for limit in limits:
            try:
                res = solve(prob, time_limit=limit, seed=seed)
            except RuntimeError as exc:          # no feasible solution within the limit
                rows.append({"instance": inst.name, "family": family, "class": inst.klass,
                             "time_limit_s": limit, "objective": "hierarchical" if hier else "distance",
                             "bks_key": key, "cost": None, "bks": best["best_known_cost"], "gap_pct": None,
                             "vehicles": None, "bks_vehicles": best["solved_with_vehicles"],
                             "feasible": False, "error": str(exc)})
                bar.update()
                continue
            cost, used, problems = evaluate(inst, routes_of(res))
            if problems:
                raise AssertionError("; ".join(problems[:3]))
            row = {"instance": inst.name, "family": family, "class": inst.klass, "time_limit_s": limit,
                   "objective": "hierarchical" if hier else "distance", "bks_key": key,
                   "cost": round(cost, 3), "bks": best["best_known_cost"],
                   "gap_pct": round(100 * (cost / best["best_known_cost"] - 1), 4),
                   "vehicles": used, "bks_vehicles": best["solved_with_vehicles"],
                   "iterations": res.iterations, "feasible": True}
            if ortools and not hier:
                from benchmarks.schedule_ortools import solve_routes
                routes = solve_routes(prob, limit)
                if routes is not None:
                    oc, _, oprob = evaluate(inst, routes)
                    row["ortools_gap_pct"] = None if oprob else round(100 * (oc / best["best_known_cost"] - 1), 4)
                else:
                    row["ortools_gap_pct"] = None
            rows.append(row)
            bar.update()
    bar.close()
    out: dict = {"vrptw_rows": rows, "time_limits_s": limits}
    # gaps are means over the instances solved feasibly; the others are counted beside them
    for limit in limits:
        tag = f"{limit:g}s"
        for fam, name in (("solomon", "solomon"), ("homberger_200", "homberger200")):
            out[f"{name}_infeasible_{tag}"] = sum(1 for r in rows if r["family"] == fam
                                                  and r["time_limit_s"] == limit and not r["feasible"])
        sol = [r for r in rows if r["family"] == "solomon" and r["time_limit_s"] == limit and r["feasible"]]
        if sol:
            out[f"solomon_gap_{tag}_mean"] = round(float(np.mean([r["gap_pct"] for r in sol])), 4)
            out[f"solomon_instances_{tag}"] = len(sol)
            ort = [r["ortools_gap_pct"] for r in sol if "ortools_gap_pct" in r]
            if ort:
                out[f"ortools_solomon_gap_{tag}_mean"] = (None if None in ort
                                                          else round(float(np.mean(ort)), 4))
        hgr = [r for r in rows if r["family"] == "homberger_200" and r["time_limit_s"] == limit and r["feasible"]]
        if hgr:
            out[f"homberger200_gap_{tag}_mean"] = round(float(np.mean([r["gap_pct"] for r in hgr])), 4)
            out[f"homberger200_extra_vehicles_{tag}"] = int(sum(max(0, r["vehicles"] - r["bks_vehicles"]) for r in hgr))
            out[f"homberger200_instances_{tag}"] = len(hgr)
    per_class: dict = {}
    for r in rows:
        if not r["feasible"]:
            continue
        fam = "solomon" if r["family"] == "solomon" else "homberger200"
        d = per_class.setdefault(f"{fam}_{r['class']}", {})
        d.setdefault(f"{r['time_limit_s']:g}s", []).append(r["gap_pct"])
    out["per_class"] = {k: {t: {"gap_mean_pct": round(float(np.mean(v)), 4), "n": len(v)} for t, v in d.items()}
                        for k, d in sorted(per_class.items())}
    return out


def _hg_key(stem: str) -> tuple:
    a, b, c = stem.split("_")
    return a, int(b), int(c)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.schedule", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a short run (one instance per class, 2 s and 5 s)")
    ap.add_argument("--json", type=Path, required=True, help="write the figures here")
    ap.add_argument("--data", type=Path, default=DEFAULT_ROOT, help="VRPTW instances (default %(default)s)")
    ap.add_argument("--part", choices=["vrptw", "fleet", "all"], default="all")
    ap.add_argument("--instances", default=None, help="comma-separated names or patterns (C101,R2*)")
    ap.add_argument("--time-limits", default=None, help="seconds per instance, comma-separated (default 10,60)")
    ap.add_argument("--homberger", type=int, default=None,
                    help="Gehring-Homberger 200 instances per class (default 10, quick 0)")
    ap.add_argument("--ortools", action="store_true",
                    help="also solve each Solomon instance with OR-Tools routing (the baseline of the solver choice)")
    ap.add_argument("--days", type=int, default=None, help="closed-loop simulated days (default 30, quick 5)")
    ap.add_argument("--seed", type=int, default=5, help="simulated fleet of the closed loop (default %(default)s)")
    ap.add_argument("--loop-iterations", type=int, default=None,
                    help="solver iterations per closed-loop plan (default: schedule_fleet.PLAN_ITERATIONS)")
    ap.add_argument("--loop-seconds", type=float, default=None,
                    help="a wall-clock limit per closed-loop plan instead of iterations (not repeatable)")
    ap.add_argument("--fleets", default=None,
                    help="closed-loop setups, comma-separated (default all: demo,fleet2000,fleet2000_20_technicians)")
    ap.add_argument("--seeds", default=None,
                    help="judge on several fleet seeds at once, comma-separated (development: 6,8,9)")
    ap.add_argument("--learned-service", action="store_true",
                    help="closed loop: the planner books the loop's learned repair time per mode, not the manual's")
    ap.add_argument("--against", type=Path, default=None,
                    help="an earlier --seeds run's JSON: each seed's planner km change against it")
    args = ap.parse_args(argv)

    figures: dict = {}
    summary = []
    try:
        if args.part in ("vrptw", "all") and not args.seeds:
            limits = ([float(x) for x in args.time_limits.split(",")] if args.time_limits
                      else [2.0, 5.0] if args.quick else [10.0, 60.0])
            names = args.instances.split(",") if args.instances else None
            hg = args.homberger if args.homberger is not None else (0 if args.quick else 10)
            figures.update(run_vrptw(args.data, names, limits, hg, args.quick, ortools=args.ortools))
            summary += [f"{k}={v}" for k, v in figures.items() if k.endswith("_mean")]
        if args.seeds:
            from benchmarks.schedule_fleet import PLAN_ITERATIONS, run_seeds
            fleets = args.fleets.split(",") if args.fleets else ["fleet2000"]
            if len(fleets) != 1:
                raise ValueError("--seeds judges one closed-loop setup: give one --fleets")
            against = json.loads(args.against.read_text())["dev_seeds"] if args.against else None
            dev = run_seeds([int(x) for x in args.seeds.split(",")], args.days,
                            args.loop_iterations or PLAN_ITERATIONS, fleets[0], against, args.learned_service)
            figures["dev_seeds"] = dev
            summary += [f"{k}={dev[k]}" for k in ("mean_ratio", "worst_ratio", "min_sla_response_margin",
                                                  "mean_km_change_vs_against") if k in dev]
            summary += [f"seed{s}={r['ratio']}" for s, r in dev["per_seed"].items()]
        elif args.part in ("fleet", "all"):
            from benchmarks.schedule_fleet import PLAN_ITERATIONS, run_fleet
            fleet = run_fleet(quick=args.quick, days=args.days, seed=args.seed,
                              iterations=args.loop_iterations or PLAN_ITERATIONS, seconds=args.loop_seconds,
                              setups=args.fleets.split(",") if args.fleets else None,
                              learned_service=args.learned_service)
            figures.update(fleet)
            summary += [f"{k}={fleet[k]}" for k in ("travel_ratio_vs_greedy", "sla_response_compliance",
                                                    "greedy_sla_response_compliance", "plan_seconds_2000_assets")
                        if k in fleet]
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write(args.json, figures, "schedule: " + " ".join(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
