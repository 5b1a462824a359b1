"""What a default regression fit costs against the binary one ``families.costs`` measured.

``python -m benchmarks.regression_costs [--families a,b] [--rows 5500] [--repeats 2]``

``family_costs`` measures each family on adult's binary task. For each family, this times one
default fit (``family_costs.fit_seconds``: one thread, ``--rows`` seeded-sampled training rows,
the median of ``--repeats``) on adult's binary task and on three regression tasks: adult's ``age``,
bikeshare's ``bikers`` and california's ``MedHouseVal``. The median of the three ratios
(regression over adult binary), rounded, is the family's ``FitCost.regression`` (catboost's
spread too widely for one factor: it plans regression at its binary cost).
Writes ``benchmarks/results/regression_costs.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from benchmarks._report import RESULTS, machine, md_table, write
from benchmarks.family_costs import ADULT, fit_seconds
from tabstream.pipeline.families import Families
from tabstream.pipeline.families.costs import CPU_FIT_COST
from tabstream.pipeline.options import FamilyOptions

TASKS = (
    ADULT,
    ("adult", "regression", "age"),
    ("bikeshare", "regression", "bikers"),
    ("california_housing", "regression", "MedHouseVal"),
)
"""(dataset, task kind, label): the binary baseline first."""


def parse(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.regression_costs", description=__doc__)
    p.add_argument("--families", default="xgboost,lightgbm,extratrees,randomforest,catboost")
    p.add_argument("--rows", type=int, default=5500)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


def measure(name: str, families: Families, n: int, repeats: int) -> dict[str, Any]:
    """One family's seconds on every task and its ratios to the binary baseline."""
    seconds = [fit_seconds(families[name], n, repeats, 1, task, shuffle=True) for task in TASKS]
    ratios = [s / seconds[0] for s in seconds[1:]]
    return {
        "family": name,
        "seconds": seconds,
        "ratios": ratios,
        "median": statistics.median(ratios),
    }


def report(records: list[dict[str, Any]], n: int, repeats: int) -> str:
    """The markdown table: seconds per task, ratios, their median, the planned factor."""
    head = ["family", *(f"{d} {label} ({kind})" for d, kind, label in TASKS)]
    head += ["median ratio", "planned (costs.py)"]
    rows = [
        [
            r["family"],
            f"{r['seconds'][0]:.2f} s",
            *(f"{s:.2f} s (x{q:.2f})" for s, q in zip(r["seconds"][1:], r["ratios"], strict=True)),
            f"{r['median']:.2f}",
            f"{CPU_FIT_COST[r['family']].regression:g}",
        ]
        for r in records
    ]
    intro = (
        f"Wall seconds of one default fit (median of {repeats}) on {n:,} training rows, one "
        "thread; in brackets each regression fit's ratio to adult's binary fit (the task "
        "`family_costs` measures). `costs.py` plans a regression fit at the median ratio, rounded "
        "(catboost's spread too widely: at its binary cost)."
    )
    lines = ["# Regression fit costs against binary (defaults, CPU)", "", intro]
    lines += [f"Machine: {machine()['cpus']} CPUs.", "", md_table(head, rows), ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Measure every family on every task; write the results."""
    args = parse(argv)
    families = Families(FamilyOptions(threads=1))
    names = args.families.split(",")
    records = [measure(name, families, args.rows, args.repeats) for name in names]
    for r in records:
        print(r, flush=True)
    data = {"machine": machine(), "rows": args.rows, "repeats": args.repeats, "records": records}
    write(args.out, "regression_costs", data, report(records, args.rows, args.repeats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(__import__("sys").argv[1:]))
