"""Metric registry over raw predictions (``pipeline.types``): probabilities (n, K) or values (n,).

Classification metrics take encoded labels 0..K-1. ``auc`` is NaN when the true labels hold a
single class (e.g. a tiny fold); multiclass ``auc`` is the macro one-vs-rest mean over the
classes present in ``y_true``. ``logloss`` scores against all K classes (probabilities clipped to
[1e-15, 1] and renormalised), so a fold missing a class is fine.

Forecasting (kind ``"forecasting"``) takes the regression metrics plus ``mase`` (MAE divided by
a scale; the run binds the in-sample seasonal-naive MAE of its series with ``with_mase_scale``;
unbound, the scale is the MAE of the naive one-step forecast of ``y_true`` itself) and
``smape`` (percent, 0..200; a pair with zero actual and forecast counts as 0).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, r2_score

CLASSIFICATION: frozenset[str] = frozenset({"binclass", "multiclass"})
REGRESSION: frozenset[str] = frozenset({"regression"})
FORECASTING: frozenset[str] = frozenset({"forecasting"})
_EPS = 1e-15


@dataclass(frozen=True)
class Metric:
    """A named score with its direction and the task kinds it applies to."""

    name: str
    greater_is_better: bool
    needs_proba: bool
    kinds: frozenset[str]
    fn: Callable[[np.ndarray, np.ndarray], float]


def _labels(raw: np.ndarray) -> np.ndarray:
    return np.asarray(np.argmax(raw, axis=1), dtype=np.int64)


def _auc(y: np.ndarray, raw: np.ndarray) -> float:
    present = np.unique(y)
    if present.size < 2:
        return float("nan")
    if raw.shape[1] == 2:
        return binary_auc(y == 1, raw[:, 1])
    return float(np.mean([binary_auc(y == k, raw[:, k]) for k in present]))


def binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of ``score`` for the boolean labels ``positive`` (both classes present), as the
    Mann-Whitney statistic on tie-averaged ranks: equal to scikit-learn's ``roc_auc_score``
    without its input validation, which cost ~5 ms a call (most of an ensemble selection's
    time: it scores every candidate on every fold at every step)."""
    ranks = rankdata(score)
    n_pos = int(np.count_nonzero(positive))
    n_neg = len(positive) - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


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


def _mae(y: np.ndarray, raw: np.ndarray) -> float:
    return float(mean_absolute_error(y, raw))


def _mase(y: np.ndarray, raw: np.ndarray, scale: float | None = None) -> float:
    if scale is None:
        naive = np.abs(np.diff(np.asarray(y, np.float64)))
        scale = float(naive.mean()) if naive.size else 0.0
    return _mae(y, raw) / scale if scale > 0 else float("nan")


def _smape(y: np.ndarray, raw: np.ndarray) -> float:
    y, raw = np.asarray(y, np.float64), np.asarray(raw, np.float64)
    den = np.abs(y) + np.abs(raw)
    ratio = np.divide(2 * np.abs(raw - y), den, out=np.zeros_like(den), where=den > 0)
    return float(100 * ratio.mean())


_TIMESERIES = REGRESSION | FORECASTING
REGISTRY: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("auc", True, True, CLASSIFICATION, _auc),
        Metric("accuracy", True, False, CLASSIFICATION, _accuracy),
        Metric("neg_class_error", True, False, CLASSIFICATION, lambda y, r: _accuracy(y, r) - 1),
        Metric("logloss", False, True, CLASSIFICATION, _logloss),
        Metric("f1", True, False, CLASSIFICATION, _f1),
        Metric("rmse", False, False, _TIMESERIES, _rmse),
        Metric("mae", False, False, _TIMESERIES, _mae),
        Metric("r2", True, False, _TIMESERIES, lambda y, r: float(r2_score(y, r))),
        Metric("mase", False, False, FORECASTING, _mase),
        Metric("smape", False, False, FORECASTING, _smape),
    )
}
_DEFAULTS: dict[str, str] = {
    "binclass": "auc",
    "multiclass": "logloss",
    "regression": "rmse",
    "forecasting": "rmse",
}


def get_metric(name: str) -> Metric:
    """The metric called ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown or unsupported metric {name!r}; known: {list(REGISTRY)}"
        ) from None


def default_metrics(kind: str) -> tuple[Metric, ...]:
    """The default metric set of a task kind: auc, logloss or rmse (also for forecasting)."""
    return (REGISTRY[_DEFAULTS[kind]],)


def resolve_metrics(names: Iterable[str] | None, kind: str) -> tuple[Metric, ...]:
    """The requested metrics (defaults when None), each checked to apply to ``kind``."""
    if names is None:
        return default_metrics(kind)
    metrics = tuple(get_metric(n) for n in names)
    for m in metrics:
        if kind not in m.kinds:
            raise ValueError(f"metric {m.name!r} does not apply to task kind {kind!r}")
    return metrics


def with_mase_scale(metrics: Iterable[Metric], scale: float) -> tuple[Metric, ...]:
    """``metrics`` with ``mase`` bound to a fixed scale (the in-sample naive MAE)."""
    return tuple(
        replace(m, fn=lambda y, r: _mase(y, r, scale)) if m.name == "mase" else m for m in metrics
    )


def score(metric: Metric, y: np.ndarray, raw: np.ndarray) -> float:
    """``metric`` of raw predictions ``raw`` against encoded labels/targets ``y``."""
    return float(metric.fn(np.asarray(y), np.asarray(raw)))


def oriented(metric: Metric, value: float) -> float:
    """``value`` turned so that higher is better."""
    return value if metric.greater_is_better else -value


def to_loss(metric: Metric, value: float) -> float:
    """``value`` turned so that lower is better (for minimising optimisers)."""
    return -oriented(metric, value)
