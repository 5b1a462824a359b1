"""Registering models: refit on all data (single) or fold models of trials (ensemble).

- Single: the row's best params are refitted on all data; early stopping uses a seeded
  internal ``REFIT_HOLDOUT`` split of the rows, the rest trains.
- Ensemble: Caruana selection over every complete trial's OOF predictions (loss = mean over
  folds of the first metric's loss); the selected trials' fold models (kept from the search, or
  refitted with its folds and seeds: deterministic on CPU) and, time permitting, each member's
  refit on all rows are saved as one bundle. A member predicts ``FULL_DATA_SHARE`` x its refit +
  the rest x the mean of its fold models: measured on the six benchmark datasets, this blend
  beat both the fold bag alone and the refit alone on test data (the fold models never see a
  fifth of the rows; the refit alone loses the bag's variance reduction). Refits (largest
  weight first) are skipped once the next would not end before the job's deadline; the reported
  ensemble metrics are those of the fold models' OOF predictions.
- Calibration: a classification ensemble's log pool is tempered when a temperature lowers its
  OOF loss (``ensemble.fit_temperature``; saved as member weights divided by the temperature;
  a note says so). Logloss gains; AUC and accuracy are unchanged by construction.
- Stacking: time permitting, a stacker over the selected members' OOF predictions is
  cross-fitted on the search's folds (``stacker.fit_stacker``; not with a single holdout or
  time-ordered folds) and replaces Caruana's weighted pool only when its OOF loss is strictly
  lower; the ensemble's metrics are then the stacker's OOF metrics. A note says which won.
- Model ids are uuid5(job_id, name), so a resumed attempt re-registers the same ids.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID, uuid5

import numpy as np

from tabstream.pipeline.finish.bundle import Bundle, FoldModel, Member, save_bundle
from tabstream.pipeline.finish.ensemble import (
    LossFn,
    Pooling,
    caruana,
    fit_temperature,
    pool,
    pooling_for,
    temper,
)
from tabstream.pipeline.finish.stacker import STRENGTHS, Stacker, fit_stacker
from tabstream.pipeline.search.budget import time_check
from tabstream.pipeline.search.row_events import finite
from tabstream.pipeline.search.rows import (
    RowResult,
    SearchContext,
    TrialRecord,
    fit_folds,
    fold_metrics,
)
from tabstream.pipeline.search.scoring import score, to_loss
from tabstream.pipeline.tasks.preprocess import Preprocessor
from tabstream.pipeline.types import FeatureMatrix, FittedModel
from tabstream.schemas.events import ModelRegistered
from tabstream.schemas.results import EnsembleInfo, EnsembleMember, Feature
from tabstream.schemas.run import TrainerRunRequest

FittedFolds = list[tuple[Preprocessor, FittedModel]]
REFIT_HOLDOUT = 0.1
CARUANA_INIT, CARUANA_ITERATIONS = 3, 50
FULL_DATA_SHARE = 0.5
"""Share of an ensemble member's prediction from its refit on all rows."""
FULL_FIT_COST = 1.3
"""Expected seconds of an all-rows refit relative to one fold fit of the trial."""
STACKER_CELL_S = 5e-8
"""Expected stacker seconds per OOF row x input x output x layer fitted (measured 1-3e-8)."""
STACKER_MAX_S = 60.0
"""No stacker that is expected to take longer, budget or not (many classes and members)."""


@dataclass
class Job:
    """A prepared run: the request, the search context, input features and notes."""

    request: TrainerRunRequest
    ctx: SearchContext
    features: list[tuple[str, str]]
    notes: list[str]
    recipe: dict[str, Any] | None = None  # forecasting/sequence feature recipe (see bundle)
    deadline: float | None = None  # time.monotonic() instant the run should end by (budget)


def _refit_full(
    job: Job, family_name: str, params: Mapping[str, Any], fitted: FittedFolds
) -> FoldModel:
    """Refit on all rows: with the family's full-data params (no validation set) when it has
    them, else with an internal holdout for early stopping (``_refit_all``)."""
    ctx, family = job.ctx, job.ctx.families[family_name]
    full = family.full_data_params(params, [m for _, m in fitted])
    if full is None:
        return _refit_all(job, family_name, params)
    pre = Preprocessor(family.preprocessing).fit(ctx.features)
    X = pre.transform(ctx.features)
    with time_check(None, ctx.fit_limit_s):
        model = family.fit(X, ctx.y, None, None, full, ctx.spec, ctx.device, ctx.random_state)
    return FoldModel(pre.state(), model.to_files())


def _refit_all(job: Job, family_name: str, params: Mapping[str, Any]) -> FoldModel:
    ctx, family = job.ctx, job.ctx.families[family_name]
    pre = Preprocessor(family.preprocessing).fit(ctx.features)
    X = pre.transform(ctx.features)
    perm = np.random.default_rng(ctx.random_state).permutation(len(ctx.y))
    n_hold = max(1, round(len(perm) * REFIT_HOLDOUT))
    tr, ho = np.sort(perm[n_hold:]), np.sort(perm[:n_hold])
    train, hold = _rows_of(X, tr), _rows_of(X, ho)
    with time_check(None, ctx.fit_limit_s):  # a refit stops where the search's fits did
        model = family.fit(
            train, ctx.y[tr], hold, ctx.y[ho], params, ctx.spec, ctx.device, ctx.random_state
        )
    return FoldModel(pre.state(), model.to_files())


def _rows_of(X: FeatureMatrix, idx: np.ndarray) -> FeatureMatrix:
    return replace(X, values=X.values[idx])


def register_single(job: Job, r: RowResult) -> UUID:
    """Refit row ``r``'s best params on all data, save and announce the bundle."""
    assert r.best is not None
    fold = _refit_all(job, r.row.family, r.best.params)
    member = Member(r.row.family, [fold], 1.0, r.row.index, r.best.number)
    return _register(job, f"row-{r.row.index}", "single", [member], r.best.metrics)


def _register(
    job: Job,
    name: str,
    kind: Literal["single", "ensemble"],
    members: list[Member],
    metrics: Mapping[str, float],
    pooling: Pooling = "linear",
    stacker: Stacker | None = None,
) -> UUID:
    ctx = job.ctx
    model_id = uuid5(ctx.job_id, name)
    bundle = Bundle(
        kind, ctx.spec, job.features, members, finite(metrics), job.recipe, pooling, stacker
    )
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
            metrics=finite(metrics),
            features=[Feature(name=n, type=t) for n, t in job.features],
            classes=classes,
            created_at=datetime.now(UTC),
        )
    )
    return model_id


def _ensemble_loss(ctx: SearchContext) -> LossFn:
    covered, metric = ctx.covered, ctx.metrics[0]
    positions = [np.searchsorted(covered, va) for _, va in ctx.splits]

    def loss(y: np.ndarray, pred: np.ndarray) -> float:
        values = [to_loss(metric, score(metric, y[p], pred[p])) for p in positions]
        value = float(np.nanmean(values))
        return float("inf") if np.isnan(value) else value

    return loss


def _member(job: Job, family: str, t: TrialRecord, weight: float) -> Member:
    """Fold models of trial ``t`` plus, when time allows, its refit on all rows."""
    ctx = job.ctx
    fitted = ctx.fold_models.get((t.row, t.number))
    if fitted is None:
        fitted = fit_folds(ctx, ctx.families[family], t.params)
    folds = [FoldModel(pre.state(), m.to_files()) for pre, m in fitted]
    if not _refit_fits(job, t):
        return Member(family, folds, weight, t.row, t.number)
    full = _refit_full(job, family, t.params, fitted)
    k = len(folds)
    fold_weights = [(1.0 - FULL_DATA_SHARE) / k] * k + [FULL_DATA_SHARE]
    return Member(family, [*folds, full], weight, t.row, t.number, fold_weights)


def _refit_fits(job: Job, t: TrialRecord) -> bool:
    if job.deadline is None:
        return True
    expected = FULL_FIT_COST * t.fit_s / max(1, len(job.ctx.splits))
    return time.monotonic() + expected <= job.deadline


def register_ensemble(
    job: Job, trials: list[TrialRecord], results: list[RowResult]
) -> tuple[EnsembleInfo, UUID]:
    """Caruana over the trials' OOF predictions, then, when it does better, a stacker over the
    selected members; save and announce the ensemble bundle."""
    ctx = job.ctx
    y, loss = ctx.y[ctx.covered], _ensemble_loss(ctx)
    pooling = pooling_for(ctx.spec.kind)
    sel = caruana([t.oof for t in trials], y, loss, CARUANA_INIT, CARUANA_ITERATIONS, pooling)
    order = sorted(sel.members, key=lambda i: (-sel.weights[i], i))
    oof = pool([trials[i].oof for i in order], [sel.weights[i] for i in order], pooling)
    temperature, oof = _calibrated(job, oof, loss) if pooling == "log" else (1.0, oof)
    metrics, _ = fold_metrics(ctx, oof)
    stacked = _stacked(job, [trials[i].oof for i in order], loss, loss(y, oof), metrics)
    stacker, metrics = stacked if stacked is not None else (None, metrics)
    family_of = {r.row.index: r.row.family for r in results}
    members, info, skipped = [], [], 0
    for i in order:
        t, weight = trials[i], float(sel.weights[i])
        family = family_of[t.row]
        member = _member(job, family, t, weight / temperature)
        skipped += member.fold_weights is None
        members.append(member)
        info.append(EnsembleMember(row=t.row, family=family, trial=t.number, weight=weight))
    if skipped:
        job.notes.append(f"time budget: {skipped} ensemble members kept their fold models only")
    model_id = _register(job, "ensemble", "ensemble", members, metrics, pooling, stacker)
    return EnsembleInfo(members=info, metrics=finite(metrics)), model_id


def _calibrated(job: Job, oof: np.ndarray, loss: LossFn) -> tuple[float, np.ndarray]:
    """The temperature that lowers the pooled OOF loss (1: none does) and the tempered OOF
    predictions; a note says what it changed."""
    y = job.ctx.y[job.ctx.covered]
    temperature, tempered_loss = fit_temperature(oof, y, loss)
    if temperature == 1.0:
        return 1.0, oof
    metric = job.ctx.metrics[0]
    sign = -1.0 if metric.greater_is_better else 1.0
    job.notes.append(
        f"ensemble calibrated: temperature {temperature:.3g} takes its OOF {metric.name} "
        f"from {sign * loss(y, oof):.4g} to {sign * tempered_loss:.4g}"
    )
    return temperature, temper(oof, temperature)


def _stacked(
    job: Job,
    oofs: list[np.ndarray],
    loss: LossFn,
    caruana_loss: float,
    caruana_metrics: dict[str, float],
) -> tuple[Stacker, dict[str, float]] | None:
    """The stacker and its OOF metrics when its OOF loss is strictly below Caruana's (a note
    says which won); None then, or when it cannot be tried: a single holdout fold,
    time-ordered (forecasting) folds, or too little time left."""
    ctx = job.ctx
    if len(ctx.splits) < 2 or (job.recipe or {}).get("kind") == "forecasting":
        return None
    expected = _stacker_seconds(job, oofs)
    left = np.inf if job.deadline is None else job.deadline - time.monotonic()
    if expected > min(left, STACKER_MAX_S):
        limit = "the stacker cap" if left >= STACKER_MAX_S else f"{max(left, 0.0):.1f} s left"
        job.notes.append(f"stacker not tried: expected to take {expected:.2g} s, over {limit}")
        return None
    folds = [np.searchsorted(ctx.covered, va) for _, va in ctx.splits]
    fit = fit_stacker(oofs, ctx.y[ctx.covered], folds, pooling_for(ctx.spec.kind), loss)
    if fit is None:
        return None
    metrics, _ = fold_metrics(ctx, fit.oof)
    chosen, name, n = fit.loss < caruana_loss, ctx.metrics[0].name, len(oofs)
    job.notes.append(
        f"stacker over {n} member{'s' if n != 1 else ''}: OOF {name} {metrics[name]:.4g} vs "
        f"Caruana {caruana_metrics[name]:.4g}: {'chosen' if chosen else 'kept Caruana'}"
    )
    return (fit.stacker, metrics) if chosen else None


def _stacker_seconds(job: Job, oofs: list[np.ndarray]) -> float:
    n_inputs = sum(o[0].size for o in oofs)  # K per member (classification), else 1
    n_outputs = max(1, job.ctx.spec.n_classes)
    n_layers = len(job.ctx.splits) * len(STRENGTHS)
    return float(STACKER_CELL_S * len(oofs[0]) * n_inputs * n_outputs * n_layers)
