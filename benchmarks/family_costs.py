"""What one default fit of each model family costs on this CPU: ``families.costs``' numbers.

``python -m benchmarks.family_costs [--families a,b] [--sizes 1000,8000] [--threads N]``

For each family and training size ``n`` (rows of adult, tree or nn preprocessing as the family
asks, plus ``n // 4`` rows for early stopping), the CPU seconds of ``fit`` with the family's
defaults on ``--threads`` threads (default 1; the median of ``--repeats``). CPU seconds of one
thread are what a fit costs whatever else runs on the machine, and a fit on more threads takes
less wall time, so the plan they give is conservative. A line through the
two sizes gives ``overhead_s + per_row_s * n``, the form ``families.costs.FitCost`` plans with.
Writes ``benchmarks/results/family_costs.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from benchmarks._report import RESULTS, machine, md_table, write
from tabstream.pipeline.families import Families
from tabstream.pipeline.families.costs import CPU_FIT_COST
from tabstream.pipeline.options import FamilyOptions
from tabstream.pipeline.tasks.prepare import prepare
from tabstream.pipeline.tasks.preprocess import Preprocessor
from tabstream.schemas import TrainerRunRequest

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def parse(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.family_costs", description=__doc__)
    p.add_argument("--families", default=",".join(CPU_FIT_COST))
    p.add_argument("--sizes", default="1000,8000")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


def fit_seconds(family: Any, n: int, repeats: int, threads: int) -> float:
    """Median CPU seconds of a default fit on ``n`` rows of adult (plus ``n // 4`` for early
    stopping)."""
    table = pq.read_table(DATA / "adult.parquet").slice(0, n + n // 4)
    body = {"dataset_id": "00000000-0000-0000-0000-000000000000",
            "task": {"task_kind": "binclass", "label_column": "income"}}  # fmt: skip
    prepared = prepare(table, TrainerRunRequest.model_validate(body).task)
    pre = Preprocessor(family.preprocessing).fit(prepared.features.slice(0, n))
    X, X_val = (
        pre.transform(prepared.features.slice(0, n)),
        pre.transform(prepared.features.slice(n)),
    )
    y, y_val = prepared.y[:n], prepared.y[n:]
    params = family.default_params(prepared.spec) | {"n_threads": threads}
    times = []
    for seed in range(repeats):
        start = time.process_time()
        family.fit(X, y, X_val, y_val, params, prepared.spec, "cpu", seed)
        times.append(time.process_time() - start)
    return statistics.median(times)


def main(argv: list[str]) -> int:
    """Measure every family at every size; write the results."""
    args = parse(argv)
    families = Families(FamilyOptions(threads=args.threads))
    sizes = [int(s) for s in args.sizes.split(",")]
    records = []
    for name in args.families.split(","):
        if families[name].available() is not None:
            continue
        secs = [fit_seconds(families[name], n, args.repeats, args.threads) for n in sizes]
        slope, intercept = np.polyfit(sizes, secs, 1) if len(sizes) > 1 else (secs[0] / sizes[0], 0)
        records.append(
            {"family": name, "seconds": dict(zip(sizes, secs, strict=True)),
             "overhead_s": max(0.0, float(intercept)), "per_row_s": max(0.0, float(slope)),
             "planned": vars(CPU_FIT_COST[name]) if name in CPU_FIT_COST else None}
        )  # fmt: skip
        print(records[-1], flush=True)
    rows = [
        [r["family"], *(f"{r['seconds'][n]:.2f}" for n in sizes),
         f"{r['overhead_s']:.2f} + {r['per_row_s']:.1e} n",
         f"{r['planned']['overhead_s']:.2f} + {r['planned']['per_row_s']:.1e} n"
         if r["planned"] else "-"]
        for r in records
    ]  # fmt: skip
    header = ["family", *(f"fit CPU s, {n:,} rows" for n in sizes), "fitted", "planned (costs.py)"]
    md = "\n".join([
        "# Family fit costs (defaults, adult, CPU)",
        "",
        f"CPU seconds of one default fit per family on {args.threads} thread(s), median of "
        f"{args.repeats}; "
        "`families.costs.CPU_FIT_COST` plans with `overhead_s + per_row_s * n`.",
        f"Machine: {machine()['cpus']} CPUs, load average {machine()['loadavg']}.",
        "",
        md_table(header, rows),
    ])  # fmt: skip
    write(args.out, "family_costs", {"machine": machine(), "records": records}, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(__import__("sys").argv[1:]))
