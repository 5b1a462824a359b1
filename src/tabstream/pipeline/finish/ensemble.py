"""Caruana ensemble selection: greedy forward selection with replacement on OOF predictions.

Candidates are raw predictions on the same rows (probabilities (n, K) or values (n,)). The
ensemble prediction is the weighted mean of its members in a pooling space (``pool``), kept as a
running sum so each step costs one metric evaluation per candidate:

- ``linear`` (regression): the weighted mean of the values;
- ``log`` (classification): the weighted mean of log-probabilities, renormalised per row (a
  logarithmic opinion pool; for two classes, the weighted mean of the logits). Where members
  agree that a row is easy, the pool stays as sure as they are, instead of being pulled towards
  the least confident member as a mean of probabilities is.

A log pool may be tempered (``fit_temperature``): dividing the pooled log-probabilities by a
temperature ``T`` before renormalising is the same pool with every weight divided by ``T`` (a
log pool's weights need not sum to 1), so a calibrated ensemble is saved as scaled weights.

The best ensemble seen along the way is returned (its first state is the best single
candidate), so the result never scores worse on OOF than the best single candidate. Ties go to
the lowest candidate index.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

LossFn = Callable[[np.ndarray, np.ndarray], float]
"""loss(y, raw_prediction) -> float, lower is better."""
Pooling = Literal["linear", "log"]
PROB_FLOOR = 1e-15
"""Probabilities are clipped to this before their log is taken."""


def pooling_for(kind: str) -> Pooling:
    """How an ensemble of this task kind combines its members: ``log`` for classification."""
    return "log" if kind in ("binclass", "multiclass") else "linear"


def to_pool_space(raw: np.ndarray, pooling: Pooling) -> np.ndarray:
    """Map raw predictions to the space where members are averaged."""
    if pooling == "log":
        return np.asarray(np.log(np.clip(raw, PROB_FLOOR, 1.0)))
    return raw


def from_pool_space(pooled: np.ndarray, pooling: Pooling) -> np.ndarray:
    """Map an average in pooling space back to predictions (probabilities sum to 1 per row)."""
    if pooling == "log":
        e = np.exp(pooled - pooled.max(axis=-1, keepdims=True))
        return np.asarray(e / e.sum(axis=-1, keepdims=True))
    return pooled


def pool(preds: Sequence[np.ndarray], weights: Sequence[float], pooling: Pooling) -> np.ndarray:
    """The weighted mean of ``preds`` in ``pooling`` space, mapped back (weights sum to 1; a
    log pool whose weights sum to ``1 / T`` is the pool tempered by ``T``, see ``temper``)."""
    total = sum(
        w * to_pool_space(np.asarray(p, dtype=np.float64), pooling)
        for w, p in zip(weights, preds, strict=True)
    )
    return from_pool_space(np.asarray(total), pooling)


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
    pooling: Pooling = "linear",
) -> EnsembleSelection:
    """Greedy forward selection with replacement, initialised with the best ``init_size``;
    members are combined in ``pooling`` space."""
    if not candidates:
        raise ValueError("caruana needs at least one candidate")
    raw = np.stack([np.asarray(c, dtype=np.float64) for c in candidates])
    single = np.array([loss(y, p) for p in raw])
    preds = to_pool_space(raw, pooling)
    counts = np.zeros(len(preds), dtype=np.int64)
    total = np.zeros_like(preds[0])
    best: tuple[float, np.ndarray] = (np.inf, counts.copy())
    init = np.argsort(single, kind="stable")[: max(1, min(init_size, len(preds)))]
    for step in range(len(init) + n_iterations):
        if step < len(init):
            pick = int(init[step])
            counts[pick] += 1
            total += preds[pick]
            value = float(loss(y, from_pool_space(total / counts.sum(), pooling)))
        else:
            pick, value = _best_addition(preds, total, int(counts.sum()), y, loss, pooling)
            counts[pick] += 1
            total += preds[pick]
        if value < best[0]:
            best = (value, counts.copy())
    chosen = best[1]
    return EnsembleSelection(chosen / chosen.sum(), chosen, best[0])


def _best_addition(
    preds: np.ndarray, total: np.ndarray, size: int, y: np.ndarray, loss: LossFn, pooling: Pooling
) -> tuple[int, float]:
    trial = from_pool_space((total[None] + preds) / (size + 1), pooling)
    values = np.array([loss(y, t) for t in trial])
    pick = int(np.argmin(values))
    return pick, float(values[pick])


TEMPERATURES = tuple(float(t) for t in 2.0 ** np.arange(-2.0, 2.0 + 1e-9, 0.125))
"""Temperatures ``fit_temperature`` tries: 0.25 to 4 on a log grid (1 among them)."""


def temper(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities raised to ``1 / temperature`` and renormalised per row (sharper below 1)."""
    return from_pool_space(to_pool_space(probs, "log") / temperature, "log")


def fit_temperature(probs: np.ndarray, y: np.ndarray, loss: LossFn) -> tuple[float, float]:
    """The temperature of ``TEMPERATURES`` with the lowest ``loss`` of the tempered ``probs``,
    and that loss; 1 unless another is strictly lower (a loss blind to confidence, such as
    AUC or accuracy, keeps 1)."""
    best = (float(loss(y, probs)), 1.0)
    for temperature in TEMPERATURES:
        value = float(loss(y, temper(probs, temperature)))
        if value < best[0]:
            best = (value, temperature)
    return best[1], best[0]
