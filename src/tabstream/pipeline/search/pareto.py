"""Multi-metric sweeps: simplex weight grids, normalised losses, scalarisation, Pareto fronts.

Normalisation turns each metric into a loss in [0, 1] (0 = best):
- bounded metrics (``BOUNDED``: auc, accuracy, f1, neg_class_error) use their fixed range, so a
  trial's normalised loss does not depend on other trials;
- unbounded ones (rmse, mae, logloss, r2, ...) are min-max scaled over the reference values
  given (the trials seen so far); a zero range maps to 0.
During a search the objective of a trial is therefore computed against the trials seen so far;
the best trial of a row is re-ranked at the end against all of the row's trials.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

BOUNDED: dict[str, tuple[float, float]] = {
    "auc": (0.0, 1.0),
    "accuracy": (0.0, 1.0),
    "f1": (0.0, 1.0),
    "neg_class_error": (-1.0, 0.0),
}


def simplex_grid(n_metrics: int, step: float) -> list[tuple[float, ...]]:
    """All weight vectors of ``n_metrics`` components, multiples of ``step``, summing to 1.

    Only the vectors themselves are built (compositions of ``1/step`` into ``n_metrics``
    parts), so the work is proportional to the answer, which the request's validation bounds.
    """
    n = round(1 / step)
    if n_metrics < 1 or abs(n * step - 1) > 1e-9:
        raise ValueError(f"invalid simplex grid: n_metrics={n_metrics}, step={step}")
    out = [tuple(c / n for c in combo) for combo in _compositions(n, n_metrics)]
    return sorted(out, reverse=True)


def _compositions(total: int, parts: int) -> Iterator[tuple[int, ...]]:
    if parts == 1:
        yield (total,)
        return
    for first in range(total + 1):
        for rest in _compositions(total - first, parts - 1):
            yield (first, *rest)


def normalise(
    values: Mapping[str, float],
    reference: Sequence[Mapping[str, float]],
    maximise: Mapping[str, bool],
) -> dict[str, float]:
    """Map each metric of ``values`` to a [0, 1] loss (see module docstring)."""
    out: dict[str, float] = {}
    for name, value in values.items():
        if name in BOUNDED:
            lo, hi = BOUNDED[name]
        else:
            seen = [r[name] for r in reference if name in r] + [value]
            lo, hi = min(seen), max(seen)
        scaled = 0.0 if hi <= lo else (value - lo) / (hi - lo)
        loss = 1.0 - scaled if maximise[name] else scaled
        out[name] = float(np.clip(loss, 0.0, 1.0))
    return out


def scalarise(weights: Sequence[float], losses: Sequence[float]) -> float:
    """The weighted sum of normalised losses."""
    return float(np.dot(np.asarray(weights, dtype=float), np.asarray(losses, dtype=float)))


def pareto_front(
    points: Sequence[Mapping[str, float]],
    metrics: Sequence[str],
    maximise: Mapping[str, bool],
) -> list[int]:
    """Indices of the non-dominated points over the raw ``metrics`` (with their directions)."""
    if not points:
        return []
    sign = np.array([-1.0 if maximise[m] else 1.0 for m in metrics])
    losses = np.array([[p[m] for m in metrics] for p in points], dtype=float) * sign
    no_worse = (losses[:, None, :] <= losses[None, :, :]).all(axis=2)
    better = (losses[:, None, :] < losses[None, :, :]).any(axis=2)
    dominated = (no_worse & better).any(axis=0)
    return [int(i) for i in np.flatnonzero(~dominated)]
