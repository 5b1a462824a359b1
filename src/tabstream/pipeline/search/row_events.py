"""TrialCompleted and RowCompleted payloads of a search row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tabstream.pipeline.search.rows import (
    Row,
    RowResult,
    SearchContext,
    TrialRecord,
)
from tabstream.schemas.events import RowCompleted, TrialCompleted


def _weights(row: Row) -> list[float] | None:
    return list(row.weights) if row.weights is not None else None


def trial_event(
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
        metrics=finite(metrics),
        score=_score(ctx, metrics),
        fit_seconds=clock["fit"],
        predict_seconds=clock["predict"],
        device=ctx.device,
        error=error,
    )


def row_event(ctx: SearchContext, result: RowResult) -> RowCompleted:
    best = result.best
    return RowCompleted(
        job_id=ctx.job_id,
        row=result.row.index,
        family=result.row.family,
        weights=_weights(result.row),
        best_trial=best.number if best else None,
        best_params=best.params if best else {},
        best_metrics=finite(best.metrics if best else {}),
        score=_score(ctx, best.metrics if best else {}),
        n_trials=len(result.trials) + result.n_failed,
        n_failed=result.n_failed,
        error=result.error,
    )


def _score(ctx: SearchContext, metrics: Mapping[str, float]) -> float | None:
    value = metrics.get(ctx.metrics[0].name)
    return None if value is None or not np.isfinite(value) else float(value)


def finite(metrics: Mapping[str, float]) -> dict[str, float]:
    """Metrics without NaN/inf values (events refuse non-finite floats)."""
    return {k: float(v) for k, v in metrics.items() if np.isfinite(v)}


def _finite_list(rows: Sequence[Mapping[str, float]]) -> list[dict[str, float]]:
    return [finite(r) for r in rows]
