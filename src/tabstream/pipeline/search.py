"""One matrix row = (family, weights | None): an optuna study scored out of fold.

Choices:
- Early stopping uses the validation fold that is also scored (slightly optimistic; standard
  in AutoML and it keeps every row on the same folds).
- Per-fold preprocessing is fitted on the training fold only and cached per (kind, fold).
- Fold models are not kept: ensembles refit the selected trials' fold models on demand with
  the same folds and seeds (``fit_folds``), which also works after a resume.
- OOF predictions of complete trials are persisted as safetensors at
  ``jobs/<job_id>/oof/row<i>-trial<t>.safetensors`` so a resumed attempt can still ensemble.
- Resume: the study ``row-<i>-<family>`` is loaded from the job's journal; its COMPLETE and FAIL
  trials count as done. A trial interrupted by a crash or a cancellation stays RUNNING and is
  redone. Trial 0 runs the family's default params (enqueued).
- ``score`` is the mean over folds of the first metric; the objective is its loss, or in a
  Pareto row the scalarised normalised loss (see ``pareto``).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

import numpy as np
import optuna
import pyarrow as pa
from optuna.trial import TrialState
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from tabstream.pipeline.families import get_family
from tabstream.pipeline.metrics import Metric, score, to_loss
from tabstream.pipeline.pareto import normalise, scalarise
from tabstream.pipeline.preprocess import Preprocessor
from tabstream.pipeline.store import Artifacts
from tabstream.pipeline.types import Emit, Family, FeatureMatrix, FittedModel, ProblemSpec
from tabstream.schemas.events import RowCompleted, TrialCompleted

Split = tuple[np.ndarray, np.ndarray]
DEFAULTS_ATTR = "tabstream_defaults"
MAX_ERROR = 2000


class Cancelled(Exception):
    """``should_stop()`` asked the run to stop."""


@dataclass(frozen=True)
class Row:
    """One matrix row: a family, and a metric weight vector in a Pareto sweep."""

    index: int
    family: str
    weights: tuple[float, ...] | None = None


@dataclass
class SearchContext:
    """Everything a row needs: data, folds, metrics, budget, I/O callbacks."""

    job_id: UUID
    features: pa.Table
    y: np.ndarray
    spec: ProblemSpec
    splits: list[Split]
    metrics: Sequence[Metric]
    strategy: Literal["optuna", "random"]
    n_trials: int
    random_state: int
    device: str
    artifacts: Artifacts
    emit: Emit
    storage: optuna.storages.BaseStorage
    should_stop: Callable[[], bool] = lambda: False
    _folds: dict[tuple[str, int], tuple[Preprocessor, FeatureMatrix, FeatureMatrix]] = field(
        default_factory=dict
    )

    @property
    def covered(self) -> np.ndarray:
        """Row indices that are scored out of fold (all rows for K-fold)."""
        return np.unique(np.concatenate([va for _, va in self.splits]))

    def fold_data(self, kind: str, f: int) -> tuple[Preprocessor, FeatureMatrix, FeatureMatrix]:
        """Preprocessor fitted on training fold ``f`` and the transformed train/val matrices."""
        if (kind, f) not in self._folds:
            tr, va = self.splits[f]
            pre = Preprocessor(kind).fit(self.features.take(tr))  # type: ignore[arg-type]
            train, val = (
                pre.transform(self.features.take(tr)),
                pre.transform(self.features.take(va)),
            )
            self._folds[(kind, f)] = (pre, train, val)
        return self._folds[(kind, f)]


@dataclass(frozen=True)
class TrialRecord:
    """A complete trial: params, mean and per-fold metrics, OOF predictions on ``covered``."""

    row: int
    number: int
    params: dict[str, Any]
    metrics: dict[str, float]
    fold_metrics: list[dict[str, float]]
    oof: np.ndarray


@dataclass
class RowResult:
    """The outcome of a row: its complete trials, best trial, failures, or an error."""

    row: Row
    trials: list[TrialRecord] = field(default_factory=list)
    best: TrialRecord | None = None
    n_failed: int = 0
    error: str | None = None


def fit_folds(
    ctx: SearchContext, family: Family, params: Mapping[str, Any]
) -> list[tuple[Preprocessor, FittedModel]]:
    """Refit a configuration on every fold exactly as in the search (same folds and seeds)."""
    out = []
    for f, (tr, va) in enumerate(ctx.splits):
        pre, train, val = ctx.fold_data(family.preprocessing, f)
        model = family.fit(
            train, ctx.y[tr], val, ctx.y[va], params, ctx.spec, ctx.device, ctx.random_state + f
        )
        out.append((pre, model))
    return out


def fold_metrics(
    ctx: SearchContext, oof: np.ndarray
) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Per-fold and mean metrics of OOF predictions aligned to ``ctx.covered``."""
    covered = ctx.covered
    per_fold = []
    for _, va in ctx.splits:
        pos = np.searchsorted(covered, va)
        per_fold.append({m.name: score(m, ctx.y[va], oof[pos]) for m in ctx.metrics})
    mean = {m.name: float(np.nanmean([d[m.name] for d in per_fold])) for m in ctx.metrics}
    return mean, per_fold


def _oof_key(ctx: SearchContext, row: int, trial: int) -> str:
    return f"jobs/{ctx.job_id}/oof/row{row}-trial{trial}.safetensors"


def _sampler(ctx: SearchContext, row: Row) -> optuna.samplers.BaseSampler:
    seed = ctx.random_state + row.index
    if ctx.strategy == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _unusable(family_name: str, ctx: SearchContext) -> tuple[Family | None, str | None]:
    try:
        family = get_family(family_name)
    except (KeyError, ValueError) as exc:
        return None, str(exc)
    reason = family.available()
    if reason is None and not family.supports(ctx.spec, ctx.device):
        reason = f"{family_name} does not support {ctx.spec.kind} on {ctx.device}"
    return (None, reason) if reason else (family, None)


def run_row(ctx: SearchContext, row: Row) -> RowResult:
    """Run (or resume) the row's study; emits TrialCompleted per trial and RowCompleted."""
    family, reason = _unusable(row.family, ctx)
    if family is None:
        result = RowResult(row, error=reason)
        ctx.emit(_row_event(ctx, result))
        return result
    study = optuna.create_study(
        study_name=f"row-{row.index}-{row.family}",
        storage=ctx.storage,
        sampler=_sampler(ctx, row),
        direction="minimize",
        load_if_exists=True,
    )
    result = RowResult(row)
    _restore(ctx, study, result)
    _ensure_defaults(study, family.default_params(ctx.spec))
    done = sum(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in study.trials)
    for _ in range(max(0, ctx.n_trials - done)):
        _check(ctx)
        _run_trial(ctx, study, family, result)
    result.best = _best(ctx, result)
    if result.best is None and result.error is None:
        result.error = f"all {result.n_failed} trials failed"
    ctx.emit(_row_event(ctx, result))
    return result


def _check(ctx: SearchContext) -> None:
    if ctx.should_stop():
        raise Cancelled("cancelled")


def _ensure_defaults(study: optuna.Study, defaults: dict[str, Any]) -> None:
    live = (TrialState.COMPLETE, TrialState.FAIL, TrialState.WAITING)
    if not any(t.user_attrs.get(DEFAULTS_ATTR) and t.state in live for t in study.trials):
        study.enqueue_trial(defaults, user_attrs={DEFAULTS_ATTR: True})


def _restore(ctx: SearchContext, study: optuna.Study, result: RowResult) -> None:
    for t in study.trials:
        if t.state == TrialState.FAIL:
            result.n_failed += 1
        elif t.state == TrialState.COMPLETE:
            oof = st_load(ctx.artifacts.get_bytes(_oof_key(ctx, result.row.index, t.number)))["oof"]
            attrs = t.user_attrs
            result.trials.append(
                TrialRecord(
                    result.row.index,
                    t.number,
                    attrs["params"],
                    attrs["metrics"],
                    attrs["fold_metrics"],
                    oof,
                )
            )


def _params(trial: optuna.Trial, family: Family, spec: ProblemSpec) -> dict[str, Any]:
    params = family.suggest(trial, spec)
    if trial.user_attrs.get(DEFAULTS_ATTR):
        params = {**params, **family.default_params(spec)}
    return params


def _run_trial(ctx: SearchContext, study: optuna.Study, family: Family, result: RowResult) -> None:
    trial = study.ask()
    clock = {"fit": 0.0, "predict": 0.0}
    params: dict[str, Any] = {}
    try:
        params = _params(trial, family, ctx.spec)
        oof = _cross_validate(ctx, family, params, clock)
    except Cancelled:
        raise
    except Exception as exc:  # any failure (incl. CUDA OOM) fails the trial
        error = "".join(traceback.format_exception_only(exc)).strip()[-MAX_ERROR:]
        trial.set_user_attr("error", error)
        study.tell(trial, state=TrialState.FAIL)
        result.n_failed += 1
        ctx.emit(_trial_event(ctx, result.row, trial.number, params, clock, None, error))
        return
    metrics, per_fold = fold_metrics(ctx, oof)
    record = TrialRecord(result.row.index, trial.number, params, metrics, per_fold, oof)
    ctx.artifacts.put_bytes(_oof_key(ctx, result.row.index, trial.number), st_save({"oof": oof}))
    for name, value in (("params", params), ("metrics", metrics), ("fold_metrics", per_fold)):
        trial.set_user_attr(name, value)
    result.trials.append(record)
    study.tell(trial, _objective(ctx, result, record))
    ctx.emit(_trial_event(ctx, result.row, trial.number, params, clock, record, None))


def _cross_validate(
    ctx: SearchContext, family: Family, params: Mapping[str, Any], clock: dict[str, float]
) -> np.ndarray:
    covered = ctx.covered
    oof: np.ndarray | None = None
    for f, (tr, va) in enumerate(ctx.splits):
        _check(ctx)
        _, train, val = ctx.fold_data(family.preprocessing, f)
        start = time.perf_counter()
        model = family.fit(
            train, ctx.y[tr], val, ctx.y[va], params, ctx.spec, ctx.device, ctx.random_state + f
        )
        mid = time.perf_counter()
        pred = np.asarray(model.predict_raw(val), dtype=np.float64)
        clock["fit"] += mid - start
        clock["predict"] += time.perf_counter() - mid
        if oof is None:
            oof = np.zeros((len(covered), *pred.shape[1:]), dtype=np.float64)
        oof[np.searchsorted(covered, va)] = pred
    assert oof is not None
    return oof


def primary_loss(ctx: SearchContext, metrics: Mapping[str, float]) -> float:
    """Loss of the first metric (NaN counts as the worst)."""
    value = to_loss(ctx.metrics[0], metrics[ctx.metrics[0].name])
    return float("inf") if np.isnan(value) else value


def _objective(ctx: SearchContext, result: RowResult, record: TrialRecord) -> float:
    if result.row.weights is None:
        return primary_loss(ctx, record.metrics)
    return _scalarised(ctx, result.row.weights, record.metrics, [t.metrics for t in result.trials])


def _scalarised(
    ctx: SearchContext,
    weights: Sequence[float],
    metrics: Mapping[str, float],
    reference: Sequence[Mapping[str, float]],
) -> float:
    maximise = {m.name: m.greater_is_better for m in ctx.metrics}
    losses = normalise(metrics, reference, maximise)
    return scalarise(weights, [losses[m.name] for m in ctx.metrics])


def _best(ctx: SearchContext, result: RowResult) -> TrialRecord | None:
    if not result.trials:
        return None
    if result.row.weights is None:
        keys = [primary_loss(ctx, t.metrics) for t in result.trials]
    else:
        ref = [t.metrics for t in result.trials]
        keys = [_scalarised(ctx, result.row.weights, t.metrics, ref) for t in result.trials]
    return result.trials[int(np.argmin(keys))]


def _weights(row: Row) -> list[float] | None:
    return list(row.weights) if row.weights is not None else None


def _trial_event(
    ctx: SearchContext,
    row: Row,
    number: int,
    params: dict[str, Any],
    clock: dict[str, float],
    record: TrialRecord | None,
    error: str | None,
) -> TrialCompleted:
    metrics = record.metrics if record else {}
    return TrialCompleted(
        job_id=ctx.job_id,
        row=row.index,
        family=row.family,
        weights=_weights(row),
        trial=number,
        state="complete" if record else "failed",
        params=params,
        fold_metrics=_finite_list(record.fold_metrics) if record else [],
        metrics=_finite(metrics),
        score=_score(ctx, metrics),
        fit_seconds=clock["fit"],
        predict_seconds=clock["predict"],
        device=ctx.device,
        error=error,
    )


def _row_event(ctx: SearchContext, result: RowResult) -> RowCompleted:
    best = result.best
    return RowCompleted(
        job_id=ctx.job_id,
        row=result.row.index,
        family=result.row.family,
        weights=_weights(result.row),
        best_trial=best.number if best else None,
        best_params=best.params if best else {},
        best_metrics=_finite(best.metrics if best else {}),
        score=_score(ctx, best.metrics if best else {}),
        n_trials=len(result.trials) + result.n_failed,
        n_failed=result.n_failed,
        error=result.error,
    )


def _score(ctx: SearchContext, metrics: Mapping[str, float]) -> float | None:
    value = metrics.get(ctx.metrics[0].name)
    return None if value is None or not np.isfinite(value) else float(value)


def _finite(metrics: Mapping[str, float]) -> dict[str, float]:
    """Metrics without NaN/inf values (events refuse non-finite floats)."""
    return {k: float(v) for k, v in metrics.items() if np.isfinite(v)}


def _finite_list(rows: Sequence[Mapping[str, float]]) -> list[dict[str, float]]:
    return [_finite(r) for r in rows]
