#!/usr/bin/env python3
"""Hypervolume against real evaluations for LINAS and NSGA-II runs, from `pareto NAME csv` files
(benchmarks/linas_budget_smollm2.sculpt writes them): does LINAS reach with few evaluations the front NSGA-II
needs many for?

Each csv lists every subnet a search evaluated, in the order it was evaluated, with its two objectives
(both minimized). The hypervolume of the non-dominated set of the first k evaluations is computed here,
independently of Sculpt's `compare`, against one reference point shared by every file: 10 % beyond the worst
value of each objective on the final fronts (`compare`'s rule). For each seed: LINAS's hypervolume at its last
evaluation, and the first NSGA-II budget that reaches it (or that it never does within its run).

Usage: python3 benchmarks/linas_budget.py [--dir build/nas] [--json OUT]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def read(path: Path) -> list[tuple[float, float]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    return [(float(r[0]), float(r[1])) for r in body], header[:2]


def non_dominated(points):
    return [p for p in points if not any(q[0] <= p[0] and q[1] <= p[1] and q != p for q in points)]


def hypervolume(points, reference) -> float:
    """Area dominated by `points` (minimization) and bounded by `reference`."""
    front = sorted({p for p in non_dominated(points) if p[0] < reference[0] and p[1] < reference[1]})
    area, previous_y = 0.0, reference[1]
    for x, y in front:  # x ascending, so y descending along a front
        if y < previous_y:
            area += (reference[0] - x) * (previous_y - y)
            previous_y = y
    return area


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dir", type=Path, default=REPO_ROOT / "build" / "nas")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    runs = {}
    for path in sorted(args.dir.glob("budget_*.csv")):
        runs[path.stem.removeprefix("budget_")], objectives = read(path)
    if not runs:
        raise SystemExit(f"no budget_*.csv in {args.dir}: run benchmarks/linas_budget_smollm2.sculpt first")
    finals = [q for points in runs.values() for q in non_dominated(points)]
    reference = []
    for m in range(2):
        values = [q[m] for q in finals]
        reference.append(max(values) + 0.1 * (max(values) - min(values) + 1e-9))
    print(f"objectives {objectives}, reference {reference}\n")
    budgets = [12, 24, 36, 48, 72, 96, 120, 144, 168, 204]
    print(f"{'run':<8} " + " ".join(f"{k:>9}" for k in budgets))
    curves = {}
    for name, points in runs.items():
        curves[name] = {k: hypervolume(points[:k], reference) for k in budgets if k <= len(points)}
        print(f"{name:<8} " + " ".join(f"{curves[name][k]:>9.4g}" if k in curves[name] else f"{'':>9}" for k in budgets))
    print()
    summary = []
    for name in sorted(curves):
        if not name.startswith("linas"):
            continue
        seed = re.sub(r"\D", "", name)
        nsga = runs.get(f"nsga{seed}")
        if nsga is None:
            continue
        linas_n = len(runs[name])
        target = hypervolume(runs[name], reference)
        reached = next((k for k in range(1, len(nsga) + 1) if hypervolume(nsga[:k], reference) >= target), None)
        summary.append({"seed": seed, "linas_evaluations": linas_n, "linas_hypervolume": target, "nsga_evaluations_to_reach": reached,
                        "nsga_evaluations_run": len(nsga), "nsga_final_hypervolume": hypervolume(nsga, reference)})
        print(f"seed {seed}: LINAS {target:.4g} after {linas_n} evaluations; NSGA-II "
              + (f"reaches it after {reached} ({reached / linas_n:.1f}× as many)" if reached else
                 f"does not reach it in {len(nsga)} (its best {hypervolume(nsga, reference):.4g})"))
    if args.json:
        args.json.write_text(json.dumps({"reference": reference, "curves": curves, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
