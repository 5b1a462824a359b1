"""Finish (DESIGN.md §6 step 5): register the models and build the leaderboard.

``ensemble=false`` refits and registers every row's best; ``ensemble=true`` registers one
Caruana ensemble over the trials (``register.register_ensemble``). In a Pareto sweep
(``grid_size`` with two or more metrics) the rows on the front are registered as single models
too; ``grid_size`` with one metric sweeps nothing and reports no front. The leaderboard ranks
the rows by the first metric (failed rows last, without a model).
"""

from __future__ import annotations

from uuid import UUID

import numpy as np

from tabstream.pipeline.finish.register import Job, register_ensemble, register_single
from tabstream.pipeline.search.pareto import pareto_front
from tabstream.pipeline.search.row_events import finite
from tabstream.pipeline.search.rows import RowResult, SearchContext, TrialRecord, primary_loss
from tabstream.schemas.checks import is_pareto_sweep
from tabstream.schemas.results import EnsembleInfo, LeaderboardEntry, ParetoPoint


def finish(
    job: Job, results: list[RowResult]
) -> tuple[list[LeaderboardEntry], list[ParetoPoint] | None, EnsembleInfo | None, UUID | None]:
    """Register the run's models; returns the leaderboard, the Pareto front (sweeps only), the
    ensemble (``ensemble=true``) and the best model's id."""
    ctx, ok = job.ctx, [r for r in results if r.best is not None]
    ranked = sorted(ok, key=lambda r: (primary_loss(ctx, _best_metrics(r)), r.row.index))
    sweep = is_pareto_sweep(len(ctx.metrics), job.request.grid_size)
    front_rows = _front(ctx, ok) if sweep else None
    refit = {r.row.index for r in (front_rows or [])}
    if not job.request.ensemble:
        refit |= {r.row.index for r in ok}
    ids = {r.row.index: register_single(job, r) for r in ok if r.row.index in refit}
    ens, best_id = None, ids.get(ranked[0].row.index) if ranked else None
    if job.request.ensemble and ok:
        ens, best_id = register_ensemble(job, ensemble_candidates(job, ok), results)
    primary = ctx.metrics[0].name
    board = [_entry(r, ids.get(r.row.index), primary) for r in ranked]
    board += [_entry(r, None, primary) for r in results if r.best is None]
    front = None
    if front_rows is not None:
        front = [_point(r, ids.get(r.row.index)) for r in front_rows]
    return board, front, ens, best_id


def ensemble_candidates(job: Job, ok: list[RowResult]) -> list[TrialRecord]:
    """Ensemble candidates: every complete trial; under a time budget only those whose fold
    models are still in memory (each row's best ``train.KEEP_FOLD_MODELS``), so that the finish
    refits nothing it cannot afford (all trials when none is kept, e.g. after a resume)."""
    trials = [t for r in ok for t in r.trials]
    if job.deadline is None:
        return trials
    kept = [t for t in trials if (t.row, t.number) in job.ctx.fold_models]
    return kept or trials


def _best_metrics(r: RowResult) -> dict[str, float]:
    return r.best.metrics if r.best is not None else {}


def _front(ctx: SearchContext, ok: list[RowResult]) -> list[RowResult]:
    maximise = {m.name: m.greater_is_better for m in ctx.metrics}
    points = [r.best.metrics for r in ok if r.best is not None]
    return [ok[i] for i in pareto_front(points, [m.name for m in ctx.metrics], maximise)]


def _entry(r: RowResult, model_id: UUID | None, primary: str) -> LeaderboardEntry:
    best = r.best
    value = best.metrics.get(primary) if best is not None else None
    score_value = float(value) if value is not None and np.isfinite(value) else None
    return LeaderboardEntry(
        row=r.row.index,
        family=r.row.family,
        weights=list(r.row.weights) if r.row.weights else None,
        score=score_value,
        metrics=finite(best.metrics) if best else {},
        params=best.params if best else {},
        model_id=model_id,
    )


def _point(r: RowResult, model_id: UUID | None) -> ParetoPoint:
    assert r.best is not None
    weights = list(r.row.weights) if r.row.weights else None
    return ParetoPoint(
        row=r.row.index,
        family=r.row.family,
        weights=weights,
        metrics=finite(r.best.metrics),
        model_id=model_id,
    )
