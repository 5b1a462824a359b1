"""Caruana ensemble selection: greedy forward selection with replacement on OOF predictions.

Candidates are raw predictions on the same rows (probabilities (n, K) or values (n,)). The
ensemble prediction is the weighted mean of its members, kept as a running sum so each step
costs one metric evaluation per candidate. The best ensemble seen along the way is returned
(its first state is the best single candidate), so the result never scores worse on OOF than
the best single candidate. Ties go to the lowest candidate index.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

LossFn = Callable[[np.ndarray, np.ndarray], float]
"""loss(y, raw_prediction) -> float, lower is better."""


@dataclass(frozen=True)
class EnsembleSelection:
    """Selected weights (one per candidate, summing to 1), counts and the ensemble OOF loss."""

    weights: np.ndarray
    counts: np.ndarray
    loss: float

    @property
    def members(self) -> list[int]:
        """Indices of candidates with a non-zero weight."""
        return [int(i) for i in np.flatnonzero(self.counts)]


def caruana(
    candidates: Sequence[np.ndarray],
    y: np.ndarray,
    loss: LossFn,
    init_size: int = 3,
    n_iterations: int = 50,
) -> EnsembleSelection:
    """Greedy forward selection with replacement, initialised with the best ``init_size``."""
    if not candidates:
        raise ValueError("caruana needs at least one candidate")
    preds = np.stack([np.asarray(c, dtype=np.float64) for c in candidates])
    single = np.array([loss(y, p) for p in preds])
    counts = np.zeros(len(preds), dtype=np.int64)
    total = np.zeros_like(preds[0])
    best: tuple[float, np.ndarray] = (np.inf, counts.copy())
    init = np.argsort(single, kind="stable")[: max(1, min(init_size, len(preds)))]
    for step in range(len(init) + n_iterations):
        if step < len(init):
            pick = int(init[step])
            counts[pick] += 1
            total += preds[pick]
            value = float(loss(y, total / counts.sum()))
        else:
            pick, value = _best_addition(preds, total, int(counts.sum()), y, loss)
            counts[pick] += 1
            total += preds[pick]
        if value < best[0]:
            best = (value, counts.copy())
    chosen = best[1]
    return EnsembleSelection(chosen / chosen.sum(), chosen, best[0])


def _best_addition(
    preds: np.ndarray, total: np.ndarray, size: int, y: np.ndarray, loss: LossFn
) -> tuple[int, float]:
    trial = (total[None] + preds) / (size + 1)
    values = np.array([loss(y, t) for t in trial])
    pick = int(np.argmin(values))
    return pick, float(values[pick])
