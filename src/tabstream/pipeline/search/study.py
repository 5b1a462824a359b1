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
  redone. Trial 0 runs the family's default params, the next trials its ``portfolio`` of
  diverse known-good configs (enqueued), then the sampler takes over: with few trials (a
  tight time budget) TPE is still sampling at random, and fixed good starting points pay.
- ``score`` is the mean over folds of the first metric; the objective is its loss, or in a
  Pareto row the scalarised normalised loss (see ``pareto``).
- Time budget (``ctx.row_deadline`` / ``ctx.search_deadline``, set by ``run(time_budget_s=)``):
  a row starts a new trial only when the median duration of its trials so far still fits before
  the row deadline (its first trial always starts while the search has time left). A trial still
  running past the row deadline stops between folds, or inside a fold's training loop for
  families that call ``budget.check_time`` (xgboost rounds, TabM epochs), once the row has a
  complete trial (past the search deadline in any case); it is told to optuna as PRUNED, so a
  resumed attempt redoes it, and emits no TrialCompleted. Without a budget nothing changes.
- With ``ctx.keep_fold_models`` > 0 (ensembles), the fold models of the row's best that many
  complete trials stay in memory (``ctx.fold_models``), so the ensemble reuses them instead of
  refitting (``fit_folds`` gives the same models on CPU; it remains the fallback).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from tabstream.pipeline.search.budget import OutOfTime, time_check
from tabstream.pipeline.search.pareto import normalise, scalarise
from tabstream.pipeline.search.pruning import FOLD_PRUNED_ATTR, FoldPruned, prune_check
from tabstream.pipeline.search.row_events import row_event, trial_event
from tabstream.pipeline.search.rows import (
    Cancelled,
    Row,
    RowResult,
    SearchContext,
    TrialRecord,
    fold_metrics,
    primary_loss,
)
from tabstream.pipeline.search.scoring import score, to_loss
from tabstream.pipeline.tasks.preprocess import Preprocessor
from tabstream.pipeline.types import Family, FittedModel, Hastens, ProblemSpec

DEFAULTS_ATTR = "tabstream_defaults"
PORTFOLIO_ATTR = "tabstream_portfolio"
MAX_ERROR = 2000
FoldModels = list[tuple[Preprocessor, FittedModel]]


def _oof_key(ctx: SearchContext, row: int, trial: int) -> str:
    return f"jobs/{ctx.job_id}/oof/row{row}-trial{trial}.safetensors"


def _sampler(ctx: SearchContext, row: Row) -> optuna.samplers.BaseSampler:
    seed = ctx.random_state + row.index
    if ctx.strategy == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _unusable(family_name: str, ctx: SearchContext) -> tuple[Family | None, str | None]:
    try:
        family = ctx.families[family_name]
    except (KeyError, ValueError) as exc:
        return None, str(exc)
    reason = family.available()
    if reason is None and not family.supports(ctx.spec, ctx.device):
        reason = f"{family_name} does not support {ctx.spec.kind} on {ctx.device}"
    return (None, reason) if reason else (family, None)


def run_row(ctx: SearchContext, row: Row) -> RowResult:
    """Run (or resume) the row's study to its end; emits TrialCompleted per trial and
    RowCompleted."""
    search = RowSearch(ctx, row)
    while search.open and _may_start(ctx, search.result, search.durations):
        search.step()
    return search.close()


class RowSearch:
    """One row's study, advanced a trial at a time: ``run_row`` runs it to its end, the time
    budget's scheduler (``schedule``) interleaves the rows' trials. ``durations`` and
    ``trial_numbers``: the seconds and numbers of the row's finished trials, in order."""

    def __init__(self, ctx: SearchContext, row: Row) -> None:
        self.ctx, self.row, self.result = ctx, row, RowResult(row)
        self.durations: list[float] = []
        self.trial_numbers: list[int] = []
        self.stopped = False
        self.family, reason = _unusable(row.family, ctx)
        if self.family is None:
            self.result.error, self.stopped = reason, True
            return
        self.study = optuna.create_study(
            study_name=f"row-{row.index}-{row.family}",
            storage=ctx.storage,
            sampler=_sampler(ctx, row),
            direction="minimize",
            load_if_exists=True,
        )
        _restore(ctx, self.study, self.result)
        _ensure_defaults(self.study, self.family.default_params(ctx.spec))
        self.portfolio = self.family.portfolio(ctx.spec)
        self.done = sum(_counts_as_done(t) for t in self.study.trials)
        self.durations = [t.fit_s for t in self.result.trials]
        self.trial_numbers = [t.number for t in self.result.trials]

    @property
    def open(self) -> bool:
        """Whether the row may run another trial (usable, not stopped, trials left)."""
        return not self.stopped and self.done < self.ctx.n_trials

    @property
    def n_starting_points(self) -> int:
        """Trials of fixed configurations before the sampler: the defaults and the portfolio."""
        return 1 + len(self.portfolio) if self.family is not None else 0

    def step(self) -> None:
        """Run the row's next trial; a trial the time budget stops ends the row."""
        _check(self.ctx)
        assert self.family is not None
        start = time.monotonic()
        _next_portfolio(self.study, self.portfolio)
        number = _run_trial(self.ctx, self.study, self.family, self.result)
        if number is None:
            self.stopped = True
            return
        self.done += 1
        self.durations.append(time.monotonic() - start)
        self.trial_numbers.append(number)

    def close(self) -> RowResult:
        """The row's result, its best trial chosen; emits RowCompleted."""
        result = self.result
        result.best = _best(self.ctx, result)
        if result.best is None and result.error is None:
            result.error = (
                f"all {result.n_failed} trials failed"
                if result.n_failed or self.ctx.search_deadline is None
                else "the time budget ran out before a trial completed"
            )
        self.ctx.emit(row_event(self.ctx, result))
        return result


def _counts_as_done(trial: FrozenTrial) -> bool:
    """Complete, failed and fold-pruned trials count towards ``n_trials``; one the time budget
    stopped (pruned without the fold mark) is redone by a resumed attempt."""
    if trial.state == TrialState.PRUNED:
        return FOLD_PRUNED_ATTR in trial.user_attrs
    return trial.state in (TrialState.COMPLETE, TrialState.FAIL)


def _check(ctx: SearchContext) -> None:
    if ctx.should_stop():
        raise Cancelled("cancelled")


def _may_start(ctx: SearchContext, result: RowResult, durations: list[float]) -> bool:
    """Whether the time budget lets the row start another trial."""
    now = time.monotonic()
    if ctx.search_deadline is not None and now >= ctx.search_deadline:
        return False
    if ctx.row_deadline is None or not result.trials:
        return True
    expected = float(np.median(durations)) if durations else 0.0
    return now + expected <= ctx.row_deadline


def _check_time(ctx: SearchContext, result: RowResult) -> None:
    """Raise OutOfTime when a running trial must stop (see the module docstring)."""
    now = time.monotonic()
    if ctx.search_deadline is not None and now >= ctx.search_deadline:
        raise OutOfTime
    if ctx.row_deadline is not None and result.trials and now >= ctx.row_deadline:
        raise OutOfTime


def _fit_check(ctx: SearchContext, result: RowResult) -> Callable[[], None] | None:
    """The check a family calls while a fold trains (``budget``): the between-folds rule."""
    if ctx.row_deadline is None and ctx.search_deadline is None:
        return None
    return lambda: _check_time(ctx, result)


def _ensure_defaults(study: optuna.Study, defaults: dict[str, Any]) -> None:
    def live(t: FrozenTrial) -> bool:
        return t.state == TrialState.WAITING or _counts_as_done(t)

    if not any(t.user_attrs.get(DEFAULTS_ATTR) and live(t) for t in study.trials):
        study.enqueue_trial(defaults, user_attrs={DEFAULTS_ATTR: True})


def _next_portfolio(study: optuna.Study, configs: list[dict[str, Any]]) -> None:
    """When nothing is queued (the defaults ran), enqueue the first portfolio config that has
    no finished (complete, failed, fold-pruned) or queued trial yet."""
    trials = study.get_trials(deepcopy=False)
    if any(t.state == TrialState.WAITING for t in trials):
        return
    seen = {t.user_attrs.get(PORTFOLIO_ATTR) for t in trials if _counts_as_done(t)}
    for i, params in enumerate(configs):
        if i not in seen:
            study.enqueue_trial(params, user_attrs={PORTFOLIO_ATTR: i})
            return


def _restore(ctx: SearchContext, study: optuna.Study, result: RowResult) -> None:
    """Take the journal's finished trials into ``result``; announce those whose TrialCompleted
    the log lost (the previous attempt died between the journal and the log)."""
    for t in study.trials:
        record = None
        if t.state == TrialState.FAIL:
            result.n_failed += 1
        elif t.state == TrialState.COMPLETE:
            oof = st_load(ctx.artifacts.get_bytes(_oof_key(ctx, result.row.index, t.number)))["oof"]
            attrs = t.user_attrs
            record = TrialRecord(
                result.row.index,
                t.number,
                attrs["params"],
                attrs["metrics"],
                attrs["fold_metrics"],
                oof,
                float(attrs.get("fit_s", 0.0)),
            )
            result.trials.append(record)
        else:
            continue
        if ctx.announced is not None and (result.row.index, t.number) not in ctx.announced:
            _announce_again(ctx, result.row, t, record)


def _announce_again(
    ctx: SearchContext, row: Row, trial: FrozenTrial, record: TrialRecord | None
) -> None:
    """The TrialCompleted of a finished trial from the journal (its times as recorded)."""
    params = record.params if record else dict(trial.params)
    clock = {"fit": record.fit_s if record else 0.0, "predict": 0.0}
    error = None if record else str(trial.user_attrs.get("error", "failed"))
    ctx.emit(trial_event(ctx, row, trial.number, params, clock, record, error))


def _params(trial: optuna.Trial, family: Family, spec: ProblemSpec) -> dict[str, Any]:
    params = family.suggest(trial, spec)
    if trial.user_attrs.get(DEFAULTS_ATTR):
        params = {**params, **family.default_params(spec)}
    return params


def _hastened(
    ctx: SearchContext, family: Family, trial: optuna.Trial, params: dict[str, Any]
) -> dict[str, Any]:
    """A fixed configuration (defaults, portfolio) of a family that ``Hastens``, hastened
    when its fits are expected to outlast the seconds a fit aims at (``ctx.slowdowns``); sampled
    configurations train as sampled (the sampler learns what the limit costs them)."""
    slowdown = ctx.slowdowns.get(family.name, 1.0)
    fixed = trial.user_attrs.get(DEFAULTS_ATTR) or PORTFOLIO_ATTR in trial.user_attrs
    if slowdown <= 1.0 or not fixed or not isinstance(family, Hastens):
        return params
    return family.hastened(params, slowdown, ctx.spec)


def _run_trial(
    ctx: SearchContext, study: optuna.Study, family: Family, result: RowResult
) -> int | None:
    """Run one trial: its number, or None when the time budget stopped it (the row then
    ends)."""
    trial = study.ask()
    clock = {"fit": 0.0, "predict": 0.0}
    params: dict[str, Any] = {}
    models: FoldModels = []
    try:
        params = _hastened(ctx, family, trial, _params(trial, family, ctx.spec))
        oof = _cross_validate(ctx, family, params, clock, result, models)
    except Cancelled:
        raise
    except OutOfTime:
        study.tell(trial, state=TrialState.PRUNED)
        return None
    except FoldPruned as pruned:
        trial.set_user_attr(FOLD_PRUNED_ATTR, pruned.folds)
        study.tell(trial, state=TrialState.PRUNED)
        result.n_pruned += 1
        return trial.number
    except Exception as exc:  # any failure (incl. CUDA OOM) fails the trial
        error = "".join(traceback.format_exception_only(exc)).strip()[-MAX_ERROR:]
        trial.set_user_attr("error", error)
        study.tell(trial, state=TrialState.FAIL)
        result.n_failed += 1
        ctx.emit(trial_event(ctx, result.row, trial.number, params, clock, None, error))
        return trial.number
    metrics, per_fold = fold_metrics(ctx, oof)
    record = TrialRecord(
        result.row.index, trial.number, params, metrics, per_fold, oof, clock["fit"]
    )
    ctx.artifacts.put_bytes(_oof_key(ctx, result.row.index, trial.number), st_save({"oof": oof}))
    attrs = {"params": params, "metrics": metrics, "fold_metrics": per_fold, "fit_s": clock["fit"]}
    for name, value in attrs.items():
        trial.set_user_attr(name, value)
    result.trials.append(record)
    study.tell(trial, _objective(ctx, result, record))
    _keep_models(ctx, result, record, models)
    ctx.emit(trial_event(ctx, result.row, trial.number, params, clock, record, None))
    return trial.number


def _keep_models(
    ctx: SearchContext, result: RowResult, record: TrialRecord, models: FoldModels
) -> None:
    """Keep the fold models of the row's best ``ctx.keep_fold_models`` trials in memory."""
    if ctx.keep_fold_models <= 0:
        return
    row = result.row.index
    ctx.fold_models[(row, record.number)] = models
    kept = [t for t in result.trials if (row, t.number) in ctx.fold_models]
    if len(kept) > ctx.keep_fold_models:
        worst = max(reversed(kept), key=lambda t: _objective(ctx, result, t))
        del ctx.fold_models[(row, worst.number)]


def _cross_validate(
    ctx: SearchContext,
    family: Family,
    params: Mapping[str, Any],
    clock: dict[str, float],
    result: RowResult,
    models: FoldModels,
) -> np.ndarray:
    covered = ctx.covered
    oof: np.ndarray | None = None
    losses: list[float] = []
    for f, (tr, va) in enumerate(ctx.splits):
        _check(ctx)
        _check_time(ctx, result)
        pre, train, val = ctx.fold_data(family.preprocessing, f)
        start = time.perf_counter()
        with time_check(_fit_check(ctx, result), ctx.fit_limit_s) as watch:
            model = family.fit(
                train, ctx.y[tr], val, ctx.y[va], params, ctx.spec, ctx.device, ctx.random_state + f
            )
        ctx.count_fit(family.name, watch.cut)
        mid = time.perf_counter()
        pred = np.asarray(model.predict_raw(val), dtype=np.float64)
        if ctx.keep_fold_models > 0:
            models.append((pre, model))
        clock["fit"] += mid - start
        clock["predict"] += time.perf_counter() - mid
        if oof is None:
            oof = np.zeros((len(covered), *pred.shape[1:]), dtype=np.float64)
        oof[np.searchsorted(covered, va)] = pred
        if ctx.prune_folds:
            losses.append(to_loss(ctx.metrics[0], score(ctx.metrics[0], ctx.y[va], pred)))
            prune_check(ctx, result, losses)
    assert oof is not None
    return oof


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
