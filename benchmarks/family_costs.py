"""What one default fit of each model family costs on this CPU: ``families.costs``' numbers.

``python -m benchmarks.family_costs [--families a,b] [--sizes 500,2000,8000] [--threads 1,2]``

For each family, training size ``n`` (rows of adult, tree or nn preprocessing as the family
asks, plus ``n // 4`` rows for early stopping) and thread count, the wall seconds of ``fit``
with the family's defaults (the median of ``--repeats``; run it on an otherwise idle machine).
The one-thread seconds at each size are ``families.costs.FitCost.points``; the speed-up on two
threads gives the share of the fit that runs in parallel (``FitCost.parallel``, Amdahl's law:
``speedup = 1 / ((1 - p) + p / 2)``, so ``p = 2 (1 - 1 / speedup)``).
Writes ``benchmarks/results/family_costs.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from benchmarks._report import RESULTS, machine, md_table, write
from tabstream.pipeline.families import Families
from tabstream.pipeline.families.costs import CPU_FIT_COST, FitCost
from tabstream.pipeline.options import FamilyOptions
from tabstream.pipeline.tasks.prepare import prepare
from tabstream.pipeline.tasks.preprocess import Preprocessor
from tabstream.schemas import TrainerRunRequest

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def parse(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.family_costs", description=__doc__)
    p.add_argument("--families", default=",".join(CPU_FIT_COST))
    p.add_argument("--sizes", default="500,2000,8000,32000")
    p.add_argument("--max-fit-s", type=float, default=15.0)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


ADULT = ("adult", "binclass", "income")
"""(dataset, task kind, label) the costs are measured on."""


def fit_seconds(
    family: Any,
    n: int,
    repeats: int,
    threads: int,
    task: tuple[str, str, str] = ADULT,
    shuffle: bool = False,
) -> float:
    """Median wall seconds of a default fit on ``n`` rows of ``task``'s dataset (plus ``n // 4``
    for early stopping) on ``threads`` threads: its first rows, or with ``shuffle`` a seeded
    sample (a dataset stored in time or place order has next rows unlike its first, which end
    early stopping sooner than a shuffled fold's would)."""
    dataset, kind, label = task
    table = pq.read_table(DATA / f"{dataset}.parquet")
    if shuffle:
        table = table.take(np.random.default_rng(0).permutation(table.num_rows))
    table = table.slice(0, n + n // 4)
    body = {"dataset_id": "00000000-0000-0000-0000-000000000000",
            "task": {"task_kind": kind, "label_column": label}}  # fmt: skip
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
        start = time.perf_counter()
        family.fit(X, y, X_val, y_val, params, prepared.spec, "cpu", seed)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def parallel_share(one: list[float], more: list[float], threads: int) -> float:
    """Amdahl's parallel share from the speed-up of ``threads`` threads over one at the largest
    size (where a fit's cost matters; small fits are dominated by serial set-up)."""
    speedup = one[-1] / more[-1]
    share = (1.0 - 1.0 / speedup) / (1.0 - 1.0 / threads)
    return round(min(1.0, max(0.0, share)), 2)


def measure(
    name: str,
    families: Families,
    sizes: list[int],
    threads: list[int],
    repeats: int,
    max_fit_s: float,
) -> dict[str, Any]:
    """One family's wall seconds per thread count and size, up to the first size whose fit on
    one thread took more than ``max_fit_s`` (the next would take minutes)."""
    measured: list[int] = []
    secs: dict[str, list[float]] = {str(t): [] for t in threads}
    for n in sizes:
        if measured and secs[str(threads[0])][-1] > max_fit_s:
            break
        for t in threads:
            secs[str(t)].append(fit_seconds(families[name], n, repeats, t))
        measured.append(n)
    return {"family": name, "sizes": measured, "seconds": secs}


def fitted(record: dict[str, Any]) -> FitCost:
    """The ``FitCost`` a record measures: its one-thread points (their running maximum: a fit
    that early-stops can end sooner on more rows, but planning assumes more rows never cost
    less) and parallel share."""
    by_threads = sorted(record["seconds"].items(), key=lambda kv: int(kv[0]))
    (one, first), (most, last) = by_threads[0], by_threads[-1]
    share = parallel_share(first, last, int(most)) if int(most) > int(one) else 0.0
    peaks = itertools.accumulate(first, max)
    points = tuple((n, round(s, 3)) for n, s in zip(record["sizes"], peaks, strict=True))
    return FitCost(points, share)


def report(records: list[dict[str, Any]], repeats: int) -> str:
    """The Markdown table: seconds per thread count and size, the fitted and planned costs."""
    threads = sorted(records[0]["seconds"], key=int)
    sizes = sorted({n for r in records for n in r["sizes"]})
    rows = []
    for r in records:
        fit, planned = fitted(r), CPU_FIT_COST.get(r["family"])
        by_size = {t: dict(zip(r["sizes"], r["seconds"][t], strict=True)) for t in threads}
        secs = [f"{by_size[t][n]:.2f}" if n in by_size[t] else "-" for t in threads for n in sizes]
        rows.append([r["family"], *secs, _cost(fit), "-" if planned is None else _cost(planned)])
    header = ["family", *(f"{t} thr, {n:,} rows" for t in threads for n in sizes),
              "fitted (points; parallel share)", "planned (costs.py)"]  # fmt: skip
    return "\n".join([
        "# Family fit costs (defaults, adult, CPU)",
        "",
        f"Wall seconds of one default fit per family, median of {repeats}, on "
        f"{' and '.join(threads)} threads; "
        "`families.costs.CPU_FIT_COST` plans with the one-thread seconds (interpolated log-log "
        "between sizes) and the parallel share (Amdahl's law, from the speed-up at the largest "
        "size).",
        f"Machine: {machine()['cpus']} CPUs, load average {machine()['loadavg']}.",
        "",
        md_table(header, rows),
    ])  # fmt: skip


def _cost(cost: FitCost) -> str:
    points = ", ".join(f"{n:,}: {s:g}" for n, s in cost.points)
    return f"{points}; {cost.parallel:.2f}"


def main(argv: list[str]) -> int:
    """Measure every family at every size and thread count; write the results."""
    args = parse(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    families = Families(FamilyOptions(threads=threads[0]))
    records = []
    for name in args.families.split(","):
        if families[name].available() is None:
            records.append(measure(name, families, sizes, threads, args.repeats, args.max_fit_s))
            print(records[-1], fitted(records[-1]), flush=True)
    data = {"machine": machine(), "repeats": args.repeats, "records": records}
    write(args.out, "family_costs", data, report(records, args.repeats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(__import__("sys").argv[1:]))
