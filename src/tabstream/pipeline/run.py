"""The pipeline entry point: ``run(request, dataset, artifacts, emit)`` -> ``RunResult``.

Steps: load + filter + prepare, model types and metrics, matrix rows (families x simplex weight
vectors in a Pareto sweep), one search per row (``search``), then finish: ``ensemble=false``
refits and registers every row's best; ``ensemble=true`` registers one Caruana ensemble (and
Pareto front members as single models); see ``register`` for the details.
This function emits TrialCompleted, RowCompleted and ModelRegistered; the worker emits
JobStarted/JobCompleted (``job_completed_event``).

Time budget (``time_budget_s``): the wall-clock seconds the whole run may take, counted from the
call. The search gets ``1 - FINISH_RESERVE`` of it, shared between the rows in order (each row
gets an equal share of what is left, so time a row does not use passes on); a row stops starting
trials when the next would not fit its share, and a trial running past it stops between folds
(see ``search``). The finish (refit or ensemble) then runs in the reserve (an ensemble skips the
all-rows refits of members that would not fit before the end); ``n_trials`` stays an upper
bound. ``None`` (the default) means no time limit: results are unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from uuid import UUID

import numpy as np
import optuna

from tabstream.pipeline.data import DataError, NotExecutableYet, prepare
from tabstream.pipeline.distill import Augmented, DistillConfig, augment, fidelity
from tabstream.pipeline.families import default_model_types, get_family
from tabstream.pipeline.filters import FilterError
from tabstream.pipeline.journal import journal_storage
from tabstream.pipeline.metrics import Metric, resolve_metrics, with_mase_scale
from tabstream.pipeline.pareto import pareto_front, simplex_grid
from tabstream.pipeline.predict import Teacher
from tabstream.pipeline.register import Job, register_ensemble, register_single
from tabstream.pipeline.row_events import finite
from tabstream.pipeline.rows import (
    Cancelled,
    Row,
    RowResult,
    SearchContext,
    TrialRecord,
    primary_loss,
)
from tabstream.pipeline.search import run_row
from tabstream.pipeline.splits import make_splits
from tabstream.pipeline.store import Artifacts
from tabstream.pipeline.types import Emit
from tabstream.schemas.checks import MODEL_TYPES, check_pareto_rows, check_random_state
from tabstream.schemas.events import JobCompleted
from tabstream.schemas.results import (
    EnsembleInfo,
    LeaderboardEntry,
    ParetoPoint,
)
from tabstream.schemas.run import TrainerRunRequest

FINISH_RESERVE = 0.15
"""Share of ``time_budget_s`` kept for the finish step (refit / ensemble, registration)."""
KEEP_FOLD_MODELS = 10
"""Fold models kept in memory per row for an ensemble (its best trials), to skip refits."""

__all__ = [
    "Cancelled",
    "DatasetRef",
    "PipelineInputError",
    "RunResult",
    "job_completed_event",
    "run",
]


class PipelineInputError(ValueError):
    """The data or request cannot be trained (the worker fails the job with ``reason``)."""

    def __init__(self, message: str, reason: str = "invalid_input") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class DatasetRef:
    """A registered dataset: its id and the artifact key of its Parquet."""

    dataset_id: UUID
    key: str


@dataclass(frozen=True)
class RunResult:
    """What a run produced; the worker turns it into JobCompleted."""

    job_id: UUID
    leaderboard: list[LeaderboardEntry]
    best_model_id: UUID | None
    ensemble: EnsembleInfo | None
    pareto_front: list[ParetoPoint] | None
    model_types: list[str]
    default_models_chosen: bool
    metrics: list[str]
    duration_s: float
    n_rows: int
    notes: list[str] = field(default_factory=list)


def job_completed_event(result: RunResult, result_uri: str | None = None) -> JobCompleted:
    """The JobCompleted payload for ``result``."""
    return JobCompleted(
        job_id=result.job_id,
        leaderboard=result.leaderboard,
        best_model_id=result.best_model_id,
        ensemble=result.ensemble,
        pareto_front=result.pareto_front,
        duration_s=result.duration_s,
        result_uri=result_uri,
        notes=result.notes,
    )


def run(
    request: TrainerRunRequest,
    dataset: DatasetRef,
    artifacts: Artifacts,
    emit: Emit,
    device: str = "cpu",
    *,
    job_id: UUID,
    should_stop: Callable[[], bool] = lambda: False,
    time_budget_s: float | None = None,
    teacher: Teacher | None = None,
) -> RunResult:
    """Train the request's model matrix on the dataset; raises PipelineInputError, Cancelled.

    ``time_budget_s``: wall-clock budget for the whole run (see the module docstring).
    """
    start = time.monotonic()
    if time_budget_s is not None and not time_budget_s > 0:
        raise PipelineInputError(f"time_budget_s must be positive, got {time_budget_s}")
    _check_admission(request)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    job, model_types, chosen = _setup(
        request, dataset, artifacts, emit, device, job_id, time_budget_s
    )
    aug = _distil(job, teacher) if teacher is not None else None
    job.ctx.should_stop = should_stop
    if request.ensemble:
        job.ctx.keep_fold_models = KEEP_FOLD_MODELS
    rows = _rows(model_types, job.ctx.metrics, request.grid_size)
    results = _search(job, rows, start, time_budget_s)
    if aug is not None:
        _add_fidelity(job, results, aug)
    board, front, ens, best_id = _finish(job, results)
    return RunResult(
        job_id,
        board,
        best_id,
        ens,
        front,
        model_types,
        chosen,
        [m.name for m in job.ctx.metrics],
        time.monotonic() - start,
        len(job.ctx.y),
        job.notes,
    )


def _setup(
    request: TrainerRunRequest,
    dataset: DatasetRef,
    artifacts: Artifacts,
    emit: Emit,
    device: str,
    job_id: UUID,
    time_budget_s: float | None = None,
) -> tuple[Job, list[str], bool]:
    try:
        table = artifacts.read_parquet(dataset.key)
        prepared = prepare(table, request.task, request.filter)
        metric_kind = prepared.metric_kind or prepared.spec.kind
        metrics = with_mase_scale(
            resolve_metrics(request.metrics, metric_kind), prepared.mase_scale
        )
        if prepared.split is not None:
            splits = prepared.split(request.n_splits, request.random_state)
        else:
            splits = make_splits(prepared.y, prepared.spec, request.n_splits, request.random_state)
    except NotExecutableYet as exc:
        raise PipelineInputError(str(exc), "not_executable") from exc
    except (DataError, FilterError, ValueError, KeyError) as exc:
        raise PipelineInputError(str(exc)) from exc
    notes = []
    if prepared.dropped_label_nulls:
        notes.append(f"dropped {prepared.dropped_label_nulls} rows with a missing label")
    model_types, chosen = _model_types(
        request, prepared.n_rows, prepared.features.num_columns, device, time_budget_s
    )
    if chosen:
        notes.append(f"default model types chosen: {model_types}")
    ctx = SearchContext(
        job_id,
        prepared.features,
        prepared.y,
        prepared.spec,
        splits,
        metrics,
        request.strategy,
        request.n_trials,
        request.random_state,
        device,
        artifacts,
        emit,
        journal_storage(artifacts, str(job_id)),
    )
    features = [(f.name, str(f.type)) for f in prepared.features.schema]
    return Job(request, ctx, features, notes, prepared.recipe), model_types, chosen


def _search(job: Job, rows: list[Row], start: float, budget: float | None) -> list[RowResult]:
    """Run the rows in order; under a budget, each gets an equal share of the time left."""
    ctx = job.ctx
    if budget is None:
        return [run_row(ctx, row) for row in rows]
    end = start + budget * (1.0 - FINISH_RESERVE)
    ctx.search_deadline, job.deadline = end, start + budget
    results = []
    for i, row in enumerate(rows):
        now = time.monotonic()
        ctx.row_deadline = now + max(0.0, end - now) / (len(rows) - i)
        results.append(run_row(ctx, row))
    ctx.row_deadline = ctx.search_deadline = None
    n_done = sum(len(r.trials) + r.n_failed for r in results)
    job.notes.append(
        f"time budget {budget:g} s: search stopped after {time.monotonic() - start:.1f} s "
        f"with {n_done} trials"
    )
    return results


def _distil(job: Job, teacher: Teacher) -> Augmented:
    """Students train on real + teacher-labelled synthetic rows (``pipeline.distill``)."""
    ctx = job.ctx
    if getattr(job, "recipe", None) is not None:
        raise PipelineInputError("distillation supports tabular tasks only")
    try:
        aug = augment(
            ctx.features, ctx.y, ctx.spec, ctx.splits, teacher, DistillConfig.from_env(),
            job.request.random_state,
        )  # fmt: skip
    except ValueError as exc:
        raise PipelineInputError(str(exc)) from exc
    ctx.features, ctx.y, ctx.splits = aug.features, aug.y, aug.splits
    job.notes.extend(aug.notes)
    return aug


def _add_fidelity(job: Job, results: list[RowResult], aug: Augmented) -> None:
    """Add fidelity to the teacher (out of fold, real rows) to each row's best metrics."""
    covered = job.ctx.covered
    for r in results:
        if r.best is not None:
            r.best.metrics.update(fidelity(job.ctx.spec, r.best.oof, aug.teacher_real[covered]))
            shown = {k: round(v, 4) for k, v in r.best.metrics.items() if k.startswith("fidelity")}
            job.notes.append(f"row {r.row.index} ({r.row.family}) fidelity to teacher: {shown}")


def _model_types(
    request: TrainerRunRequest,
    n_rows: int,
    n_cols: int,
    device: str,
    time_budget_s: float | None = None,
) -> tuple[list[str], bool]:
    if request.model_types:
        return list(request.model_types), False
    tabicl = get_family("tabicl").available() is None
    return default_model_types(n_rows, n_cols, device, tabicl, time_budget_s), True


def _check_admission(request: TrainerRunRequest) -> None:
    """The API's admission rules again, for commands that entered the log before them."""
    try:
        check_random_state(request.random_state)
        families = len(request.model_types or MODEL_TYPES)
        check_pareto_rows(len(request.metrics or []), request.grid_size, families)
    except ValueError as exc:
        raise PipelineInputError(str(exc)) from None


def _rows(model_types: Sequence[str], metrics: Sequence[Metric], grid: float | None) -> list[Row]:
    weights: list[tuple[float, ...] | None] = [None]
    if grid is not None and len(metrics) >= 2:
        weights = list(simplex_grid(len(metrics), grid))
    pairs = [(family, w) for family in model_types for w in weights]
    return [Row(i, family, w) for i, (family, w) in enumerate(pairs)]


def _finish(
    job: Job, results: list[RowResult]
) -> tuple[list[LeaderboardEntry], list[ParetoPoint] | None, EnsembleInfo | None, UUID | None]:
    ctx, ok = job.ctx, [r for r in results if r.best is not None]
    ranked = sorted(ok, key=lambda r: (primary_loss(ctx, _best_metrics(r)), r.row.index))
    front_rows = _front(ctx, ok) if job.request.grid_size is not None else None
    refit = {r.row.index for r in (front_rows or [])}
    if not job.request.ensemble:
        refit |= {r.row.index for r in ok}
    ids = {r.row.index: register_single(job, r) for r in ok if r.row.index in refit}
    ens, best_id = None, ids.get(ranked[0].row.index) if ranked else None
    if job.request.ensemble and ok:
        ens, best_id = register_ensemble(job, _candidates(job, ok), results)
    primary = ctx.metrics[0].name
    board = [_entry(r, ids.get(r.row.index), primary) for r in ranked]
    board += [_entry(r, None, primary) for r in results if r.best is None]
    front = None
    if front_rows is not None:
        front = [_point(r, ids.get(r.row.index)) for r in front_rows]
    return board, front, ens, best_id


def _candidates(job: Job, ok: list[RowResult]) -> list[TrialRecord]:
    """Ensemble candidates: every complete trial; under a time budget only those whose fold
    models are still in memory (each row's best ``KEEP_FOLD_MODELS``), so that the finish
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
