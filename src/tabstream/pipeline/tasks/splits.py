"""Seeded train/validation splits: K-fold (stratified for classification) or one holdout.

Also the splits of the sequential tasks: ``time_splits`` (forecasting: time-ordered, never
shuffled) and ``group_splits`` (sequence tasks: grouped by id, stratified for classification).
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.model_selection import (
    GroupKFold,
    KFold,
    StratifiedGroupKFold,
    StratifiedKFold,
    train_test_split,
)

from tabstream.pipeline.types import DataError, ProblemSpec, Split

HOLDOUT_FRACTION = 0.2


def make_splits(
    y: np.ndarray, spec: ProblemSpec, n_splits: int | None, random_state: int
) -> list[Split]:
    """(train_idx, valid_idx) pairs; ``n_splits=None`` gives one 80/20 holdout. Deterministic."""
    n = len(y)
    if n_splits is None:
        return [_holdout(y, spec, random_state)]
    if n_splits < 2:
        raise DataError(f"n_splits must be at least 2, got {n_splits}")
    if n_splits > n:
        raise DataError(f"n_splits={n_splits} is more than the {n} rows")
    if spec.is_classification:
        smallest = _smallest_class(y)
        if n_splits > smallest:
            raise DataError(
                f"n_splits={n_splits} is more than the {smallest} rows of the smallest class "
                f"of {spec.label!r}; use fewer folds"
            )
        folds = StratifiedKFold(n_splits, shuffle=True, random_state=random_state).split(y, y)
    else:
        folds = KFold(n_splits, shuffle=True, random_state=random_state).split(y)
    return [(_ints(tr), _ints(va)) for tr, va in folds]


def _holdout(y: np.ndarray, spec: ProblemSpec, random_state: int) -> Split:
    n = len(y)
    if n < 2:
        raise DataError(f"a holdout split needs at least 2 rows, got {n}")
    stratify = None
    if spec.is_classification:
        smallest = _smallest_class(y)
        n_classes = len(np.unique(y))
        n_test = math.ceil(n * HOLDOUT_FRACTION)
        if smallest < 2 or min(n_test, n - n_test) < n_classes:
            raise DataError(
                f"too few rows for a stratified holdout on {spec.label!r}: {n} rows, "
                f"{n_classes} classes, smallest class has {smallest}"
            )
        stratify = y
    tr, va = train_test_split(
        np.arange(n), test_size=HOLDOUT_FRACTION, random_state=random_state, stratify=stratify
    )
    return np.sort(_ints(tr)), np.sort(_ints(va))


def _smallest_class(y: np.ndarray) -> int:
    return int(np.unique(y, return_counts=True)[1].min())


def _ints(idx: np.ndarray) -> np.ndarray:
    return np.asarray(idx, dtype=np.int64)


def time_splits(cutoff: np.ndarray, target: np.ndarray, n_splits: int | None) -> list[Split]:
    """Time-ordered splits of forecasting rows (cutoff and target times per row).

    The distinct cutoff times are cut into consecutive blocks: ``n_splits=None`` validates on
    the last ``HOLDOUT_FRACTION`` of them (last-window holdout); ``n_splits=k`` cuts them into
    k + 1 blocks and fold i validates block i + 1 (expanding window). Training rows are those
    whose *target* time is at or before the first validation cutoff (a gap of one horizon), so
    no training target is unknown at validation time.
    """
    times = np.unique(cutoff)
    if len(times) < 2:
        raise DataError("a time-ordered split needs at least 2 distinct cutoff times")
    if n_splits is None:
        starts = [times[max(1, math.floor(len(times) * (1 - HOLDOUT_FRACTION)))]]
    else:
        if n_splits < 2:
            raise DataError(f"n_splits must be at least 2, got {n_splits}")
        if n_splits + 1 > len(times):
            raise DataError(f"n_splits={n_splits} needs more than the {len(times)} cutoff times")
        starts = list(times[np.linspace(0, len(times), n_splits + 2).astype(np.int64)[1:-1]])
    ends = [*starts[1:], None]
    return [_time_fold(cutoff, target, s, e) for s, e in zip(starts, ends, strict=True)]


def _time_fold(cutoff: np.ndarray, target: np.ndarray, start: int, end: int | None) -> Split:
    val = cutoff >= start if end is None else (cutoff >= start) & (cutoff < end)
    train = target <= start
    if not train.any() or not val.any():
        raise DataError(
            "too little history for time-ordered splits: a validation window has no earlier "
            "training rows (use fewer splits, a shorter horizon or more data)"
        )
    return _ints(np.flatnonzero(train)), _ints(np.flatnonzero(val))


def group_splits(
    y: np.ndarray, groups: np.ndarray, spec: ProblemSpec, n_splits: int | None, random_state: int
) -> list[Split]:
    """Grouped splits: no group (id) in two folds; stratified by label for classification.

    ``n_splits=None`` is a grouped holdout: the first fold of a
    ``round(1 / HOLDOUT_FRACTION)``-fold grouped split.
    """
    k = n_splits if n_splits is not None else round(1 / HOLDOUT_FRACTION)
    n_groups = len(np.unique(groups))
    if k < 2:
        raise DataError(f"n_splits must be at least 2, got {k}")
    if k > n_groups:
        raise DataError(f"{k} grouped folds need at least {k} ids, got {n_groups}")
    if spec.is_classification:
        smallest = _smallest_class(y)
        if k > smallest:
            raise DataError(
                f"{k} grouped folds are more than the {smallest} ids of the smallest class of "
                f"{spec.label!r}; use fewer folds"
            )
        splitter: GroupKFold | StratifiedGroupKFold = StratifiedGroupKFold(
            k, shuffle=True, random_state=random_state
        )
    else:
        splitter = GroupKFold(k, shuffle=True, random_state=random_state)
    folds = [(_ints(tr), _ints(va)) for tr, va in splitter.split(y, y, groups)]
    return folds if n_splits is not None else folds[:1]
