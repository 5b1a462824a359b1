"""Search rows: what a row is, the context it runs in, its results, fold fitting and scoring."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

import numpy as np
import optuna
import pyarrow as pa

from tabstream.pipeline.search.budget import time_check
from tabstream.pipeline.search.scoring import Metric, score, to_loss
from tabstream.pipeline.tasks.preprocess import Preprocessor
from tabstream.pipeline.types import (
    Artifacts,
    Emit,
    Family,
    FeatureMatrix,
    FittedModel,
    ProblemSpec,
    Split,
)


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
    """Everything a row needs: data, folds, metrics, the families, budget, I/O callbacks."""

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
    families: Mapping[str, Family]
    should_stop: Callable[[], bool] = lambda: False
    # On a resumed attempt: the (row, trial) pairs the log already announced (None: a first
    # attempt, nothing to announce again).
    announced: frozenset[tuple[int, int]] | None = None
    # Time budget (``run(time_budget_s=...)``), as ``time.monotonic()`` instants: no new trial
    # of the current row starts after ``row_deadline``; a trial still running then stops between
    # folds once the row has a complete trial, else at ``search_deadline`` (end of the search).
    row_deadline: float | None = None
    search_deadline: float | None = None
    # Under a time budget on a CPU: the seconds one fit of a ``costs.TIME_BOUNDED`` family may train
    # (``budget.fit_limit_s``), so that its trial fits ``BUDGET_SHARE`` of the budget.
    fit_limit_s: float | None = None
    # ... and, per family that ``Hastens``, its default fit's expected seconds over those a fit
    # aims at (``limits.haste_target``): its fixed configurations train hastened when above 1.
    slowdowns: dict[str, float] = field(default_factory=dict)
    # ... and the time-bounded families whose default fit is expected to outlast that limit
    # (``limits.cut_short``): their starting points run a round late (``schedule``).
    cut_short: frozenset[str] = frozenset()
    # Per family: the search's fits under that limit, and those it cut short (the fit said so:
    # ``budget.stopped_at_limit``).
    limited_fits: Counter[str] = field(default_factory=Counter)
    cut_fits: Counter[str] = field(default_factory=Counter)
    # Stop a trial's remaining folds when its first folds cannot beat the row's best
    # (``study._prune_check``; on under a time budget).
    prune_folds: bool = False
    # Fold models of the best ``keep_fold_models`` trials per row (``(row, trial)`` -> fold
    # models), kept so that an ensemble need not refit them (0: keep none).
    keep_fold_models: int = 0
    fold_models: dict[tuple[int, int], list[tuple[Preprocessor, FittedModel]]] = field(
        default_factory=dict
    )
    _folds: dict[tuple[str, int], tuple[Preprocessor, FeatureMatrix, FeatureMatrix]] = field(
        default_factory=dict
    )

    def count_fit(self, family: str, cut: bool) -> None:
        """Count a search fit of ``family`` under the per-fit limit, and whether it was cut."""
        if self.fit_limit_s is not None:
            self.limited_fits[family] += 1
            self.cut_fits[family] += cut

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
    """A complete trial: params, mean and per-fold metrics, OOF predictions on ``covered``,
    and the seconds its fold fits took together."""

    row: int
    number: int
    params: dict[str, Any]
    metrics: dict[str, float]
    fold_metrics: list[dict[str, float]]
    oof: np.ndarray
    fit_s: float = 0.0


@dataclass
class RowResult:
    """The outcome of a row: its complete trials, best trial, failures, or an error."""

    row: Row
    trials: list[TrialRecord] = field(default_factory=list)
    best: TrialRecord | None = None
    n_failed: int = 0
    n_pruned: int = 0
    error: str | None = None


def fit_folds(
    ctx: SearchContext, family: Family, params: Mapping[str, Any]
) -> list[tuple[Preprocessor, FittedModel]]:
    """Refit a configuration on every fold as in the search (same folds, seeds and per-fit
    time limit)."""
    out = []
    for f, (tr, va) in enumerate(ctx.splits):
        pre, train, val = ctx.fold_data(family.preprocessing, f)
        with time_check(None, ctx.fit_limit_s):
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


def primary_loss(ctx: SearchContext, metrics: Mapping[str, float]) -> float:
    """Loss of the first metric (NaN counts as the worst)."""
    value = to_loss(ctx.metrics[0], metrics[ctx.metrics[0].name])
    return float("inf") if np.isnan(value) else value
