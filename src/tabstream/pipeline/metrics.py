"""Metric registry over raw predictions (see ``types``): probabilities (n, K) or values (n,).

Classification metrics take encoded labels 0..K-1. ``auc`` is NaN when the true labels hold a
single class (e.g. a tiny fold); multiclass ``auc`` is the macro one-vs-rest mean over the
classes present in ``y_true``. ``logloss`` scores against all K classes (probabilities clipped to
[1e-15, 1] and renormalised), so a fold missing a class is fine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, r2_score, roc_auc_score

from tabstream.pipeline.types import TaskKind

CLASSIFICATION: frozenset[TaskKind] = frozenset({"binclass", "multiclass"})
REGRESSION: frozenset[TaskKind] = frozenset({"regression"})
_EPS = 1e-15


@dataclass(frozen=True)
class Metric:
    """A named score with its direction and the task kinds it applies to."""

    name: str
    greater_is_better: bool
    needs_proba: bool
    kinds: frozenset[TaskKind]
    fn: Callable[[np.ndarray, np.ndarray], float]


def _labels(raw: np.ndarray) -> np.ndarray:
    return np.asarray(np.argmax(raw, axis=1), dtype=np.int64)


def _auc(y: np.ndarray, raw: np.ndarray) -> float:
    present = np.unique(y)
    if present.size < 2:
        return float("nan")
    if raw.shape[1] == 2:
        return float(roc_auc_score(y, raw[:, 1]))
    return float(np.mean([roc_auc_score(y == k, raw[:, k]) for k in present]))


def _accuracy(y: np.ndarray, raw: np.ndarray) -> float:
    return float(accuracy_score(y, _labels(raw)))


def _logloss(y: np.ndarray, raw: np.ndarray) -> float:
    p = np.clip(np.asarray(raw, dtype=np.float64), _EPS, 1.0)
    p /= p.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))


def _f1(y: np.ndarray, raw: np.ndarray) -> float:
    k = raw.shape[1]
    average = "binary" if k == 2 else "macro"
    return float(f1_score(y, _labels(raw), labels=list(range(k)), average=average, zero_division=0))


def _rmse(y: np.ndarray, raw: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(y, np.float64) - raw) ** 2)))


REGISTRY: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("auc", True, True, CLASSIFICATION, _auc),
        Metric("accuracy", True, False, CLASSIFICATION, _accuracy),
        Metric("neg_class_error", True, False, CLASSIFICATION, lambda y, r: _accuracy(y, r) - 1),
        Metric("logloss", False, True, CLASSIFICATION, _logloss),
        Metric("f1", True, False, CLASSIFICATION, _f1),
        Metric("rmse", False, False, REGRESSION, _rmse),
        Metric("mae", False, False, REGRESSION, lambda y, r: float(mean_absolute_error(y, r))),
        Metric("r2", True, False, REGRESSION, lambda y, r: float(r2_score(y, r))),
    )
}
_DEFAULTS: dict[str, str] = {"binclass": "auc", "multiclass": "logloss", "regression": "rmse"}


def get_metric(name: str) -> Metric:
    """The metric called ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown or unsupported metric {name!r}; known: {list(REGISTRY)}"
        ) from None


def default_metrics(kind: TaskKind) -> tuple[Metric, ...]:
    """The default metric set of a task kind: auc, logloss or rmse."""
    return (REGISTRY[_DEFAULTS[kind]],)


def resolve_metrics(names: Iterable[str] | None, kind: TaskKind) -> tuple[Metric, ...]:
    """The requested metrics (defaults when None), each checked to apply to ``kind``."""
    if names is None:
        return default_metrics(kind)
    metrics = tuple(get_metric(n) for n in names)
    for m in metrics:
        if kind not in m.kinds:
            raise ValueError(f"metric {m.name!r} does not apply to task kind {kind!r}")
    return metrics


def score(metric: Metric, y: np.ndarray, raw: np.ndarray) -> float:
    """``metric`` of raw predictions ``raw`` against encoded labels/targets ``y``."""
    return float(metric.fn(np.asarray(y), np.asarray(raw)))


def oriented(metric: Metric, value: float) -> float:
    """``value`` turned so that higher is better."""
    return value if metric.greater_is_better else -value


def to_loss(metric: Metric, value: float) -> float:
    """``value`` turned so that lower is better (for minimising optimisers)."""
    return -oriented(metric, value)
