"""The pipeline entry point: ``run(request, dataset, artifacts, emit)`` -> ``RunResult``.

Finish choices:
- ``ensemble=false``: each row's best params are refitted on all data and registered; early
  stopping uses a seeded internal 10% holdout (``REFIT_HOLDOUT``), the rest trains.
- ``ensemble=true``: Caruana selection over every complete trial's OOF predictions (loss = mean
  over folds of the first metric's loss); selected trials' fold models are refitted with the
  search's folds and seeds and saved as one ensemble bundle. Pareto front members are refitted
  as single models as well.
- Model ids are uuid5(job_id, name), so a resumed attempt re-registers the same ids.
This function emits TrialCompleted, RowCompleted and ModelRegistered; the worker emits
JobStarted/JobCompleted (``job_completed_event``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid5

import numpy as np
import optuna

from tabstream.pipeline.bundle import Bundle, FoldModel, Member, save_bundle
from tabstream.pipeline.data import DataError, NotExecutableYet, prepare
from tabstream.pipeline.ensemble import caruana
from tabstream.pipeline.families import default_model_types, get_family
from tabstream.pipeline.filters import FilterError
from tabstream.pipeline.journal import journal_storage
from tabstream.pipeline.metrics import Metric, resolve_metrics, score, to_loss
from tabstream.pipeline.pareto import pareto_front, simplex_grid
from tabstream.pipeline.preprocess import Preprocessor
from tabstream.pipeline.search import (
    Cancelled,
    Row,
    RowResult,
    SearchContext,
    TrialRecord,
    fit_folds,
    fold_metrics,
    primary_loss,
    run_row,
)
from tabstream.pipeline.splits import make_splits
from tabstream.pipeline.store import Artifacts
from tabstream.pipeline.types import Emit
from tabstream.schemas.events import JobCompleted, ModelRegistered
from tabstream.schemas.results import (
    EnsembleInfo,
    EnsembleMember,
    Feature,
    LeaderboardEntry,
    ParetoPoint,
)
from tabstream.schemas.run import TrainerRunRequest

__all__ = [
    "Cancelled",
    "DatasetRef",
    "PipelineInputError",
    "RunResult",
    "job_completed_event",
    "run",
]
REFIT_HOLDOUT = 0.1
CARUANA_INIT, CARUANA_ITERATIONS = 3, 50


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


@dataclass
class _Job:
    request: TrainerRunRequest
    ctx: SearchContext
    features: list[tuple[str, str]]
    notes: list[str]


def run(
    request: TrainerRunRequest,
    dataset: DatasetRef,
    artifacts: Artifacts,
    emit: Emit,
    device: str = "cpu",
    *,
    job_id: UUID,
    should_stop: Callable[[], bool] = lambda: False,
) -> RunResult:
    """Train the request's model matrix on the dataset; raises PipelineInputError, Cancelled."""
    start = time.monotonic()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    job, model_types, chosen = _setup(request, dataset, artifacts, emit, device, job_id)
    job.ctx.should_stop = should_stop
    rows = _rows(model_types, job.ctx.metrics, request.grid_size)
    results = [run_row(job.ctx, row) for row in rows]
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
) -> tuple[_Job, list[str], bool]:
    try:
        table = artifacts.read_parquet(dataset.key)
        prepared = prepare(table, request.task, request.filter)
        metrics = resolve_metrics(request.metrics, prepared.spec.kind)
        splits = make_splits(prepared.y, prepared.spec, request.n_splits, request.random_state)
    except NotExecutableYet as exc:
        raise PipelineInputError(str(exc), "not_executable") from exc
    except (DataError, FilterError, ValueError, KeyError) as exc:
        raise PipelineInputError(str(exc)) from exc
    notes = []
    if prepared.dropped_label_nulls:
        notes.append(f"dropped {prepared.dropped_label_nulls} rows with a missing label")
    model_types, chosen = _model_types(
        request, prepared.n_rows, prepared.features.num_columns, device
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
    return _Job(request, ctx, features, notes), model_types, chosen


def _model_types(
    request: TrainerRunRequest, n_rows: int, n_cols: int, device: str
) -> tuple[list[str], bool]:
    if request.model_types:
        return list(request.model_types), False
    tabicl = get_family("tabicl").available() is None
    return default_model_types(n_rows, n_cols, device, tabicl), True


def _rows(model_types: Sequence[str], metrics: Sequence[Metric], grid: float | None) -> list[Row]:
    weights: list[tuple[float, ...] | None] = [None]
    if grid is not None and len(metrics) >= 2:
        weights = list(simplex_grid(len(metrics), grid))
    pairs = [(family, w) for family in model_types for w in weights]
    return [Row(i, family, w) for i, (family, w) in enumerate(pairs)]


def _finish(
    job: _Job, results: list[RowResult]
) -> tuple[list[LeaderboardEntry], list[ParetoPoint] | None, EnsembleInfo | None, UUID | None]:
    ctx, ok = job.ctx, [r for r in results if r.best is not None]
    ranked = sorted(ok, key=lambda r: (primary_loss(ctx, r.best.metrics), r.row.index))  # type: ignore[union-attr]
    front_rows = _front(ctx, ok) if job.request.grid_size is not None else None
    refit = {r.row.index for r in (front_rows or [])}
    if not job.request.ensemble:
        refit |= {r.row.index for r in ok}
    ids = {r.row.index: _register_single(job, r) for r in ok if r.row.index in refit}
    ens, best_id = None, ids.get(ranked[0].row.index) if ranked else None
    if job.request.ensemble and ok:
        ens, best_id = _register_ensemble(job, [t for r in ok for t in r.trials], results)
    board = [_entry(r, ids.get(r.row.index)) for r in ranked]
    board += [_entry(r, None) for r in results if r.best is None]
    front = None
    if front_rows is not None:
        front = [_point(r, ids.get(r.row.index)) for r in front_rows]
    return board, front, ens, best_id


def _front(ctx: SearchContext, ok: list[RowResult]) -> list[RowResult]:
    maximise = {m.name: m.greater_is_better for m in ctx.metrics}
    points = [r.best.metrics for r in ok if r.best is not None]
    return [ok[i] for i in pareto_front(points, [m.name for m in ctx.metrics], maximise)]


def _finite(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if np.isfinite(v)}


def _entry(r: RowResult, model_id: UUID | None) -> LeaderboardEntry:
    best = r.best
    score_value = None
    if best is not None:
        value = next(iter(best.metrics.values()))
        score_value = float(value) if np.isfinite(value) else None
    return LeaderboardEntry(
        row=r.row.index,
        family=r.row.family,
        weights=list(r.row.weights) if r.row.weights else None,
        score=score_value,
        metrics=_finite(best.metrics) if best else {},
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
        metrics=_finite(r.best.metrics),
        model_id=model_id,
    )


def _refit_all(job: _Job, family_name: str, params: Mapping[str, Any]) -> FoldModel:
    ctx, family = job.ctx, get_family(family_name)
    pre = Preprocessor(family.preprocessing).fit(ctx.features)
    X = pre.transform(ctx.features)
    perm = np.random.default_rng(ctx.random_state).permutation(len(ctx.y))
    n_hold = max(1, round(len(perm) * REFIT_HOLDOUT))
    tr, ho = np.sort(perm[n_hold:]), np.sort(perm[:n_hold])
    train, hold = _rows_of(X, tr), _rows_of(X, ho)
    model = family.fit(
        train, ctx.y[tr], hold, ctx.y[ho], params, ctx.spec, ctx.device, ctx.random_state
    )
    return FoldModel(pre.state(), model.to_files())


def _rows_of(X: Any, idx: np.ndarray) -> Any:
    from dataclasses import replace

    return replace(X, values=X.values[idx])


def _register_single(job: _Job, r: RowResult) -> UUID:
    assert r.best is not None
    fold = _refit_all(job, r.row.family, r.best.params)
    member = Member(r.row.family, [fold], 1.0, r.row.index, r.best.number)
    return _register(job, f"row-{r.row.index}", "single", [member], r.best.metrics)


def _register(
    job: _Job, name: str, kind: str, members: list[Member], metrics: Mapping[str, float]
) -> UUID:
    ctx = job.ctx
    model_id = uuid5(ctx.job_id, name)
    bundle = Bundle(kind, ctx.spec, job.features, members, _finite(metrics))  # type: ignore[arg-type]
    uri, digest = save_bundle(ctx.artifacts, str(model_id), bundle)
    classes = list(ctx.spec.classes) if ctx.spec.classes is not None else None
    ctx.emit(
        ModelRegistered(
            model_id=model_id,
            job_id=ctx.job_id,
            kind=kind,
            families=sorted({m.family for m in members}),
            uri=uri,
            sha256=digest,
            task=job.request.task,
            metrics=_finite(metrics),
            features=[Feature(name=n, type=t) for n, t in job.features],
            classes=classes,
            created_at=datetime.now(UTC),
        )
    )
    return model_id


def _ensemble_loss(ctx: SearchContext) -> Callable[[np.ndarray, np.ndarray], float]:
    covered, metric = ctx.covered, ctx.metrics[0]
    positions = [np.searchsorted(covered, va) for _, va in ctx.splits]

    def loss(y: np.ndarray, pred: np.ndarray) -> float:
        values = [to_loss(metric, score(metric, y[p], pred[p])) for p in positions]
        value = float(np.nanmean(values))
        return float("inf") if np.isnan(value) else value

    return loss


def _register_ensemble(
    job: _Job, trials: list[TrialRecord], results: list[RowResult]
) -> tuple[EnsembleInfo, UUID]:
    ctx = job.ctx
    y = ctx.y[ctx.covered]
    sel = caruana([t.oof for t in trials], y, _ensemble_loss(ctx), CARUANA_INIT, CARUANA_ITERATIONS)
    family_of = {r.row.index: r.row.family for r in results}
    members, info = [], []
    for i in sel.members:
        t, weight = trials[i], float(sel.weights[i])
        family = family_of[t.row]
        folds = [
            FoldModel(pre.state(), m.to_files())
            for pre, m in fit_folds(ctx, get_family(family), t.params)
        ]
        members.append(Member(family, folds, weight, t.row, t.number))
        info.append(EnsembleMember(row=t.row, family=family, trial=t.number, weight=weight))
    oof = sum(float(sel.weights[i]) * trials[i].oof for i in sel.members)
    metrics, _ = fold_metrics(ctx, np.asarray(oof))
    model_id = _register(job, "ensemble", "ensemble", members, metrics)
    return EnsembleInfo(members=info, metrics=_finite(metrics)), model_id
