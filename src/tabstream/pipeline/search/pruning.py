"""Pruning across folds: a trial under a time budget stops its remaining folds when its first
folds cannot beat the row's best trial (``prune_check``). A pruned trial is told to optuna as
PRUNED with ``FOLD_PRUNED_ATTR`` (the folds it ran): it counts towards ``n_trials`` and a
resumed attempt does not redo it; it emits no TrialCompleted (the job's notes count them)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tabstream.pipeline.search.rows import RowResult, SearchContext, TrialRecord, primary_loss
from tabstream.pipeline.search.scoring import to_loss

FOLD_PRUNED_ATTR = "tabstream_fold_pruned"
PRUNE_Z = 2.0
"""How many standard errors behind the row's best a trial's first folds must be to prune it."""


class FoldPruned(Exception):
    """A trial's first folds fell too far behind the row's best trial (``prune_check``)."""

    def __init__(self, folds: int) -> None:
        super().__init__(f"pruned after {folds} folds")
        self.folds = folds


def prune_check(ctx: SearchContext, result: RowResult, losses: Sequence[float]) -> None:
    """Raise FoldPruned when the trial's first folds say it is behind the row's best trial.

    A paired test on the same folds: the mean difference ``m`` between the trial's fold losses
    and the best trial's, over its first ``k`` folds, against the noise ``s`` of such
    differences (the pooled fold-to-fold standard deviation of the other complete trials'
    differences from the best): prune when ``m > PRUNE_Z * s / sqrt(k)``. Fold difficulty
    cancels in the difference, so a trial is cut early only when it is clearly behind. Pareto
    rows (their objective moves with the reference set), a trial's last fold and rows with
    fewer than two complete trials are never pruned.
    """
    k = len(losses)
    if result.row.weights is not None or k >= len(ctx.splits) or len(result.trials) < 2:
        return
    best = min(result.trials, key=lambda t: primary_loss(ctx, t.metrics))
    reference = _fold_losses(ctx, best)
    noise = _paired_noise(ctx, reference, [t for t in result.trials if t is not best])
    diff = float(np.mean(np.asarray(losses) - reference[:k]))
    if noise is not None and np.isfinite(diff) and diff > PRUNE_Z * noise / np.sqrt(k):
        raise FoldPruned(k)


def _fold_losses(ctx: SearchContext, trial: TrialRecord) -> np.ndarray:
    metric = ctx.metrics[0]
    return np.array([to_loss(metric, m.get(metric.name, np.nan)) for m in trial.fold_metrics])


def _paired_noise(
    ctx: SearchContext, reference: np.ndarray, others: Sequence[TrialRecord]
) -> float | None:
    """Pooled within-trial standard deviation of fold-loss differences from ``reference``
    (None without two degrees of freedom)."""
    squares, dof = 0.0, 0
    for trial in others:
        diff = _fold_losses(ctx, trial) - reference
        if len(diff) > 1 and np.all(np.isfinite(diff)):
            squares += float(np.sum((diff - diff.mean()) ** 2))
            dof += len(diff) - 1
    return float(np.sqrt(squares / dof)) if dof >= 2 else None
