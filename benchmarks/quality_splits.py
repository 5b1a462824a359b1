"""The quality benchmark across outer splits: ``python -m benchmarks.quality_splits``.

One split's test set is small on some datasets (200 rows of credit_g, 462 of segment), so one
split's ranking of two systems within a few per cent is mostly which rows landed in the test
set. This report reads the stored runs of one budget on several seeded outer splits (every
``results/quality*.json``: ``benchmarks.quality --seed N --name quality_seed<N>`` writes one per
split; where two files hold the same split and budget, the first by name counts), and, per
dataset, gives each system's mean test score over the splits every compared system has, and on
how many splits tabstream is at least as good as each rival, one section per budget; then, for
the smallest and largest budget, tabstream against itself (the issue's third target: the larger
budget's result is never worse than the smaller one's). Writes ``results/quality_splits.md``;
it trains nothing.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from statistics import mean
from typing import Any

from benchmarks._quality_report import LABELS, RIVALS, beats, loss_pct
from benchmarks._report import md_table

RESULTS = Path(__file__).resolve().parent / "results"
HEADER = (
    "# Quality across outer splits\n\n"
    "Mean test score per dataset over the seeded outer splits stored for both systems (see "
    "`benchmarks/quality_splits.py` for why). Loss: tabstream's mean deficit in % of the "
    "rival's mean (negative: tabstream is better).\n\n"
)


def _args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--budgets", default="60,300", help="comma-separated seconds")
    return p.parse_args(argv)


def split_records(results: Path, budget: float) -> dict[int, list[dict[str, Any]]]:
    """Per seed, the stored records at ``budget`` (the first file by name holding that seed
    and budget)."""
    out: dict[int, list[dict[str, Any]]] = {}
    for path in sorted(results.glob("quality*.json")):
        data = json.loads(path.read_text())
        runs = [r for r in data.get("runs", []) if r["budget_s"] == budget]
        if runs:
            out.setdefault(int(data.get("seed", 0)), runs[0]["datasets"])
    return out


def compare(
    by_seed: dict[int, list[dict[str, Any]]], dataset: str, rival: str, system: str = "tabstream"
) -> dict[str, Any]:
    """``system`` against ``rival`` on ``dataset`` over the splits both have: seeds, mean
    scores, splits where ``system`` is at least as good, and its mean loss in % of the rival's
    mean (<= 0: not worse)."""
    both = {
        seed: r
        for seed, records in sorted(by_seed.items())
        for r in records
        if r["dataset"] == dataset and beats(r, system, rival) is not None
    }
    if not both:
        return {"seeds": []}
    systems = (system, rival)
    means = {s: mean(r["systems"][s]["score"] for r in both.values()) for s in systems}
    metric = next(iter(both.values()))["metric"]
    of_means = {"metric": metric, "systems": {s: {"score": v} for s, v in means.items()}}
    return {
        "seeds": list(both),
        "metric": metric,
        **means,
        "ge": sum(bool(beats(r, system, rival)) for r in both.values()),
        "loss_pct": loss_pct(of_means, system, rival),
    }


def _row(dataset: str, c: dict[str, Any], first: str, second: str) -> list[Any]:
    """A table row from ``compare``'s result: the means of ``first`` and ``second`` (its two
    systems, in column order), the splits won and the mean loss."""
    loss = c["loss_pct"]
    return [
        dataset,
        c["metric"],
        len(c["seeds"]),
        f"{c[first]:.5f}",
        f"{c[second]:.5f}",
        f"{c['ge']} of {len(c['seeds'])}",
        "-" if loss is None else f"{loss:+.3f} %",
    ]


def markdown(by_seed: dict[int, list[dict[str, Any]]], budget: float) -> str:
    """One budget's section: per rival, a table of mean test scores over the stored splits."""
    datasets = list(dict.fromkeys(r["dataset"] for recs in by_seed.values() for r in recs))
    parts = [f"## Budget {budget:g} s (seeds {sorted(by_seed)} stored)\n"]
    for rival in RIVALS:
        rows, ge_mean = [], 0
        for dataset in datasets:
            c = compare(by_seed, dataset, rival)
            if c["seeds"]:
                loss = c["loss_pct"]  # None: the rival's mean is 0
                ge_mean += loss is not None and loss <= 0
                rows.append(_row(dataset, c, "tabstream", rival))
        if rows:
            label = LABELS[rival]
            parts.append(
                f"### tabstream vs {label}\n\n"
                + md_table(
                    [
                        "dataset",
                        "metric",
                        "splits",
                        "tabstream",
                        label,
                        f"splits >= {label}",
                        "mean loss",
                    ],
                    rows,
                )
                + f"\n- tabstream's mean >= {label}'s on {ge_mean} of {len(rows)} datasets\n"
            )
    return "\n".join(parts)


def growth(
    small: dict[int, list[dict[str, Any]]], large: dict[int, list[dict[str, Any]]], dataset: str
) -> dict[str, Any]:
    """tabstream at the larger budget (``large``) against itself at the smaller (``small``) on
    ``dataset``, over the splits both budgets have: as ``compare``, with the budgets as the
    systems ``"large"`` and ``"small"``."""

    def scores(by_seed: dict[int, list[dict[str, Any]]]) -> dict[int, dict[str, Any]]:
        return {seed: r for seed, recs in by_seed.items() for r in recs if r["dataset"] == dataset}

    lo, hi = scores(small), scores(large)
    paired = {
        seed: {
            "dataset": dataset,
            "metric": hi[seed]["metric"],
            "systems": {
                "large": hi[seed]["systems"].get("tabstream", {}),
                "small": lo[seed]["systems"].get("tabstream", {}),
            },
        }
        for seed in sorted(set(lo) & set(hi))
    }
    return compare({seed: [r] for seed, r in paired.items()}, dataset, "small", system="large")


def growth_markdown(
    small: dict[int, list[dict[str, Any]]],
    large: dict[int, list[dict[str, Any]]],
    budgets: tuple[float, float],
) -> str:
    """The section comparing tabstream at the largest budget with itself at the smallest."""
    lo, hi = (f"{b:g} s" for b in budgets)
    datasets = list(dict.fromkeys(r["dataset"] for recs in large.values() for r in recs))
    rows, ge_splits, n_splits = [], 0, 0
    for dataset in datasets:
        c = growth(small, large, dataset)
        if c["seeds"]:
            ge_splits, n_splits = ge_splits + c["ge"], n_splits + len(c["seeds"])
            rows.append(_row(dataset, c, "small", "large"))
    if not rows:
        return ""
    header = ["dataset", "metric", "splits", lo, hi, f"splits {hi} >= {lo}", "mean loss"]
    return (
        f"## tabstream: {hi} vs {lo}\n\nLoss: the {hi} mean's deficit in % of the {lo} mean "
        "(negative: the larger budget is better).\n\n"
        + md_table(header, rows)
        + f"\n- tabstream at {hi} >= at {lo} on {ge_splits} of {n_splits} dataset splits\n"
    )


def main(argv: list[str]) -> int:
    """Write ``quality_splits.md`` from the stored split runs of each budget."""
    args = _args(argv)
    sections, stored = [], {}
    for budget in (float(b) for b in args.budgets.split(",")):
        by_seed = split_records(args.results, budget)
        if by_seed:
            stored[budget] = by_seed
            sections.append(markdown(by_seed, budget))
    lo, hi = min(stored, default=0.0), max(stored, default=0.0)
    if lo < hi:
        sections.append(growth_markdown(stored[lo], stored[hi], (lo, hi)))
    if not sections:
        print(f"no stored quality runs at {args.budgets} s in {args.results}")
        return 1
    out = args.results / "quality_splits.md"
    out.write_text(HEADER + "\n".join(sections))
    print(out.read_text())
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
