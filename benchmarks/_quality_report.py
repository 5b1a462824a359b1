"""The quality benchmark's verdicts and Markdown report (``benchmarks.quality`` runs it).

A *record* is one dataset at one budget: {dataset, metric, systems: {system: {score, fit_s, ...}
or {error}}, winner}; a *run* is (budget in seconds, its records).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from benchmarks._report import md_table

GREATER = {"auc": True, "logloss": False, "rmse": False}
LABELS = {
    "tabstream": "tabstream",
    "autogluon": "AutoGluon",
    "flaml": "FLAML",
    "xgboost": "xgboost default",
}
RIVALS = ("autogluon", "flaml")
Run = tuple[float, list[dict[str, Any]]]


def winner(record: dict[str, Any]) -> str | None:
    """The system with the best test score."""
    scores: dict[str, float] = {s: v["score"] for s, v in record["systems"].items() if "score" in v}
    if not scores:
        return None
    pick = max if GREATER[record["metric"]] else min
    return pick(scores, key=lambda s: scores[s])


def _scores(record: dict[str, Any], a: str, b: str) -> tuple[float, float] | None:
    sa = record["systems"].get(a, {}).get("score")
    sb = record["systems"].get(b, {}).get("score")
    return None if sa is None or sb is None else (sa, sb)


def beats(record: dict[str, Any], a: str, b: str) -> bool | None:
    """Whether system ``a`` scores at least as well as ``b`` (None when either is missing)."""
    pair = _scores(record, a, b)
    if pair is None:
        return None
    sa, sb = pair
    return bool(sa >= sb) if GREATER[record["metric"]] else bool(sa <= sb)


def loss_pct(record: dict[str, Any], a: str, b: str) -> float | None:
    """How much worse ``a`` scores than ``b``, in % of ``b``'s score (<= 0 when not worse)."""
    pair = _scores(record, a, b)
    if pair is None or pair[1] == 0:
        return None
    sa, sb = pair
    worse = sb - sa if GREATER[record["metric"]] else sa - sb
    return 100.0 * worse / abs(sb)


def tally(records: Sequence[dict[str, Any]], rival: str) -> dict[str, Any]:
    """tabstream against ``rival``: datasets at least as good, datasets compared, largest loss %."""
    wins = [beats(r, "tabstream", rival) for r in records]
    losses = [loss_pct(r, "tabstream", rival) for r in records]
    return {
        "ge": sum(bool(w) for w in wins),
        "compared": sum(w is not None for w in wins),
        "largest_loss_pct": max((x for x in losses if x is not None and x > 0), default=None),
    }


def verdict(records: Sequence[dict[str, Any]], rival: str) -> str:
    """``tabstream >= <rival> on N of M (largest loss X %)``."""
    t = tally(records, rival)
    loss = t["largest_loss_pct"]
    tail = "no loss" if loss is None else f"largest loss {loss:.2f} %"
    return f"tabstream >= {LABELS[rival]} on {t['ge']} of {t['compared']} ({tail})"


def score_table(records: Sequence[dict[str, Any]]) -> str:
    """Test scores (fit seconds in brackets) of every system, and the winner."""

    def cell(r: dict[str, Any], s: str) -> str:
        v = r["systems"].get(s)
        if v is None:
            return "-"
        if "score" not in v:
            return "error"
        return f"{v['score']:.4f} ({v['fit_s']:.0f} s)"

    rows = [
        [r["dataset"], r["metric"], *(cell(r, s) for s in LABELS), LABELS.get(r["winner"], "-")]
        for r in records
    ]
    return md_table(["dataset", "metric", *LABELS.values(), "winner"], rows)


def tabstream_details(records: Sequence[dict[str, Any]]) -> str:
    """tabstream's model types, per-family trial counts and ensemble weights per dataset."""
    rows = []
    for r in records:
        ts = r["systems"].get("tabstream", {})
        if "trials" in ts:
            ens = ts.get("ensemble") or []
            members = ", ".join(f"{m['family']}#{m['trial']}:{m['weight']:.2f}" for m in ens)
            rows.append(
                [r["dataset"], ts["model_types"], ts["trials"], members or "-", ts["cv_score"]]
            )
    return md_table(["dataset", "model types", "trials", "ensemble members", "CV score"], rows)


def autogluon_details(records: Sequence[dict[str, Any]]) -> str:
    """AutoGluon's models (counts per model type), best model and ensemble weights per dataset."""
    rows = []
    for r in records:
        ag = r["systems"].get("autogluon", {})
        if "leaderboard" in ag:
            counts = ", ".join(f"{t}: {n}" for t, n in ag["model_counts"].items())
            weights = ", ".join(f"{m}:{w:.2f}" for m, w in ag["ensemble"].items())
            rows.append([r["dataset"], counts or "-", ag["best_model"], weights or "-"])
    return md_table(["dataset", "models fit", "best model", "ensemble weights"], rows)


def budget_section(budget: float, records: Sequence[dict[str, Any]]) -> str:
    """One budget's score table, verdicts and details."""
    verdicts = "".join(f"- {verdict(records, rival)}\n" for rival in RIVALS)
    return (
        f"## Budget {budget:g} s\n\n"
        + score_table(records)
        + f"\n{verdicts}\n### tabstream details ({budget:g} s)\n\n"
        + tabstream_details(records)
        + f"\n### AutoGluon details ({budget:g} s)\n\n"
        + autogluon_details(records)
    )


def markdown(runs: Sequence[Run], seed: int) -> str:
    """The Markdown report: one section per budget."""
    budgets = ("Budgets " if len(runs) > 1 else "Budget ") + ", ".join(f"{b:g} s" for b, _ in runs)
    return (
        "# Quality: tabstream vs AutoGluon vs FLAML vs default xgboost\n\n"
        f"{budgets} of wall clock per dataset and system (fit time in brackets; "
        "xgboost default has no budget; AutoGluon: medium_quality preset), seeded 80/20 outer "
        f"split (seed {seed}, stratified for classification), test metric: AUC (higher is "
        "better), logloss / RMSE (lower). Largest loss: tabstream's worst deficit, in % of the "
        "rival's score.\n"
        f"Machine: {os.cpu_count()} CPU cores shared with other work, so times are noisy. "
        "A rerun of some systems (``--update``) keeps the others' results on the same seeded "
        "split; each result's time is its ``run_at`` in the JSON.\n\n"
        + "\n".join(budget_section(b, records) for b, records in runs)
    )


def panels(runs: Sequence[Run]) -> list[tuple[str, dict[str, float | None]]]:
    """Bar-chart panels: one per dataset and budget, one bar per system."""
    return [
        (
            f"{r['dataset']} ({r['metric']}, {budget:g} s)",
            {LABELS[s]: r["systems"].get(s, {}).get("score") for s in LABELS},
        )
        for budget, records in runs
        for r in records
    ]
