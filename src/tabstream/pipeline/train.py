"""The pipeline entry point: ``run(request, dataset, artifacts, emit)`` -> ``RunResult``.

Steps, one folder each: ``tasks`` (load + filter + prepare, splits), ``distill`` (when the
request names a teacher: teacher-labelled synthetic rows join the training rows), ``search``
(metrics, matrix rows = families x simplex weight vectors in a Pareto sweep, one optuna study
per row), then ``finish``: ``ensemble=false`` refits and registers every row's best;
``ensemble=true`` registers one Caruana ensemble (and Pareto front members as single models).
This function emits TrialCompleted, RowCompleted and ModelRegistered; the worker emits
JobStarted/JobCompleted (``job_completed_event``). The operator's configuration arrives as
``options`` (``options.PipelineOptions``); the pipeline reads no environment.

Time budget (``time_budget_s``): the wall-clock seconds the whole run may take, counted from the
call. The search gets ``1 - FINISH_RESERVE`` of it: the rows' trials are interleaved by
``search.schedule`` (every family's defaults and portfolio first, then HPO for the rows with the
best recent gain per second, trials pruned across folds while the budget binds, no trial started
that is not expected to end in time) and a trial running past the deadline stops between folds
or inside its training loop (see ``search.study``). The finish (refit or ensemble) then runs in
the reserve (an ensemble skips the all-rows refits of members that would not fit before the
end); ``n_trials`` stays an upper bound. ``None`` (the default) means no time limit: rows run one
after the other and results are unchanged. The worker passes the request's ``time_budget_s``.
On a CPU without one, default families estimated to take too long are left out and named in
the notes (``families.choice``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from uuid import UUID

import optuna

from tabstream.pipeline.distill.augment import Augmented, augment, fidelity
from tabstream.pipeline.families import (
    BUDGET_SHARE,
    Families,
    first_trial_seconds,
    fit_limit,
    holdout_pays,
)
from tabstream.pipeline.families.choice import choose_model_types
from tabstream.pipeline.families.limits import (
    bounded_note,
    cut_note,
    cut_short,
    hastened_note,
    plan_binds,
    slowdowns,
)
from tabstream.pipeline.finish.leaderboard import finish
from tabstream.pipeline.finish.register import Job
from tabstream.pipeline.options import DistillOptions, PipelineOptions
from tabstream.pipeline.search.journal import journal_storage
from tabstream.pipeline.search.pareto import simplex_grid
from tabstream.pipeline.search.rows import Cancelled, Row, RowResult, SearchContext
from tabstream.pipeline.search.schedule import budget_summary, schedule
from tabstream.pipeline.search.scoring import Metric, resolve_metrics, with_mase_scale
from tabstream.pipeline.search.study import run_row
from tabstream.pipeline.tasks.filter_compile import FilterError
from tabstream.pipeline.tasks.prepare import NotExecutableYet, prepare, prepare_notes
from tabstream.pipeline.tasks.splits import make_splits
from tabstream.pipeline.types import Artifacts, DataError, Emit, Teacher
from tabstream.schemas.checks import (
    check_pareto_rows,
    check_random_state,
    is_pareto_sweep,
    sweep_families,
)
from tabstream.schemas.events import JobCompleted
from tabstream.schemas.results import EnsembleInfo, LeaderboardEntry, ParetoPoint
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
    options: PipelineOptions | None = None,
    announced: frozenset[tuple[int, int]] | None = None,
) -> RunResult:
    """Train the request's model matrix on the dataset; raises PipelineInputError, Cancelled.

    ``time_budget_s``: wall-clock budget for the whole run (see the module docstring).
    ``options``: the operator's configuration (defaults: that of unset settings).
    ``announced``: on a resumed attempt, the (row, trial) pairs whose TrialCompleted the log
    already has; the trials the journal holds beyond those are announced again.
    """
    start = time.monotonic()
    options = options or PipelineOptions()
    if time_budget_s is not None and not time_budget_s > 0:
        raise PipelineInputError(f"time_budget_s must be positive, got {time_budget_s}")
    _check_admission(request)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    families = Families(options.families)
    job, model_types, chosen = _setup(
        request, dataset, artifacts, emit, device, job_id, families, time_budget_s
    )
    aug = _distil(job, teacher, options.distill) if teacher is not None else None
    job.ctx.should_stop = should_stop
    job.ctx.announced = announced
    if request.ensemble:
        job.ctx.keep_fold_models = KEEP_FOLD_MODELS
    rows = _rows(model_types, job.ctx.metrics, request.grid_size)
    results = _search(job, rows, start, time_budget_s, families.fit_threads)
    if aug is not None:
        _add_fidelity(job, results, aug)
    board, front, ens, best_id = finish(job, results)
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
    families: Families,
    time_budget_s: float | None = None,
) -> tuple[Job, list[str], bool]:
    try:
        table = artifacts.read_parquet(dataset.key)
        prepared = prepare(table, request.task, request.filter)
        metric_kind = prepared.metric_kind or prepared.spec.kind
        metrics = with_mase_scale(
            resolve_metrics(request.metrics, metric_kind), prepared.mase_scale
        )
        shape = (prepared.n_rows, prepared.features.num_columns, prepared.spec.n_classes)
        n_rows, n_cols, n_classes = shape
        choice = choose_model_types(
            request, n_rows, n_cols, device, families, time_budget_s, n_classes
        )
        n_splits, notes = _folds(
            request, n_rows, n_classes, choice.model_types, device, time_budget_s, families
        )
        if prepared.split is not None:
            splits = prepared.split(n_splits, request.random_state)
        else:
            splits = make_splits(prepared.y, prepared.spec, n_splits, request.random_state)
    except NotExecutableYet as exc:
        raise PipelineInputError(str(exc), "not_executable") from exc
    except (DataError, FilterError, ValueError, KeyError) as exc:
        raise PipelineInputError(str(exc)) from exc
    notes = [*prepare_notes(prepared), *choice.notes, *notes]
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
        families,
    )
    features = [(f.name, str(f.type)) for f in prepared.features.schema]
    return Job(request, ctx, features, notes, prepared.recipe), choice.model_types, choice.chosen


def _search(
    job: Job, rows: list[Row], start: float, budget: float | None, threads: int
) -> list[RowResult]:
    """Run the rows in order; under a budget, interleaved by the scheduler (``schedule``;
    ``threads``: of each fit, for the first trials' estimates)."""
    ctx = job.ctx
    if budget is None:
        return [run_row(ctx, row) for row in rows]
    ctx.search_deadline, job.deadline = start + budget * (1.0 - FINISH_RESERVE), start + budget
    n_rows, fits = len(ctx.y), len(ctx.splits)
    if not ctx.device.startswith("cuda"):
        job.notes.extend(_limit_fits(ctx, rows, budget, threads))

    def first_trial_s(family: str) -> float | None:
        n_classes = ctx.spec.n_classes
        return first_trial_seconds(
            family, n_rows, fits, ctx.device, n_classes, threads, ctx.fit_limit_s
        )

    results, notes = schedule(ctx, rows, first_trial_s)
    ctx.search_deadline = None
    job.notes.extend(notes)
    if ctx.fit_limit_s is not None:
        job.notes.extend(cut_note(ctx.limited_fits, ctx.cut_fits, ctx.fit_limit_s))
    n_done = sum(len(r.trials) + r.n_failed for r in results)
    job.notes.append(
        f"time budget {budget:g} s: search stopped after {time.monotonic() - start:.1f} s "
        f"with {n_done} trials; {budget_summary(results, ctx.n_trials)}"
    )
    return results


def _limit_fits(ctx: SearchContext, rows: list[Row], budget: float, threads: int) -> list[str]:
    """Under a CPU budget the planned search overruns (``limits.plan_binds``): set the per-fit
    limit and the families' haste, and return their notes; none when the plan fits."""
    n_rows, fits, n_classes = len(ctx.y), len(ctx.splits), ctx.spec.n_classes
    names = [r.family for r in rows]
    search_s = budget * (1.0 - FINISH_RESERVE)
    if not plan_binds(names, n_rows, fits, n_classes, threads, ctx.n_trials, search_s):
        return []
    limit = ctx.fit_limit_s = fit_limit(budget, fits)
    ctx.slowdowns = slowdowns(ctx.families, names, n_rows, fits, n_classes, threads, limit)
    ctx.cut_short = cut_short(names, n_rows, fits, n_classes, threads, limit)
    return bounded_note(budget, names, limit) + hastened_note(budget, ctx.slowdowns, limit)


def _folds(
    request: TrainerRunRequest,
    n_rows: int,
    n_classes: int,
    model_types: list[str],
    device: str,
    budget: float | None,
    families: Families,
) -> tuple[int | None, list[str]]:
    """The run's folds: the request's, or a holdout when a K-fold trial would cost too much
    of the time budget on a CPU (``holdout_pays``), said in a note."""
    k = request.n_splits
    if budget is None or k is None or device.startswith("cuda"):
        return k, []
    if not holdout_pays(model_types, n_rows, k, budget, n_classes, families.fit_threads):
        return k, []
    return None, [
        f"holdout split instead of {k} folds: a {k}-fold trial on {n_rows:,} rows is expected "
        f"to take more than {BUDGET_SHARE:.0%} of time_budget_s {budget:g} s"
    ]


def _distil(job: Job, teacher: Teacher, options: DistillOptions) -> Augmented:
    """Students train on real + teacher-labelled synthetic rows (``distill.augment``)."""
    ctx = job.ctx
    if getattr(job, "recipe", None) is not None:
        raise PipelineInputError("distillation supports tabular tasks only")
    try:
        aug = augment(
            ctx.features,
            ctx.y,
            ctx.spec,
            ctx.splits,
            teacher,
            options,
            job.request.random_state,
        )
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


def _check_admission(request: TrainerRunRequest) -> None:
    """The API's admission rules again, for commands that entered the log before them."""
    try:
        check_random_state(request.random_state)
        families = sweep_families(request.model_types)
        check_pareto_rows(len(request.metrics or []), request.grid_size, families)
    except ValueError as exc:
        raise PipelineInputError(str(exc)) from None


def _rows(model_types: Sequence[str], metrics: Sequence[Metric], grid: float | None) -> list[Row]:
    weights: list[tuple[float, ...] | None] = [None]
    if grid is not None and is_pareto_sweep(len(metrics), grid):
        weights = list(simplex_grid(len(metrics), grid))
    pairs = [(family, w) for family in model_types for w in weights]
    return [Row(i, family, w) for i, (family, w) in enumerate(pairs)]
