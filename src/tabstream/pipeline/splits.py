"""Seeded train/validation splits: K-fold (stratified for classification) or one holdout."""

from __future__ import annotations

import math

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from tabstream.pipeline.data import DataError
from tabstream.pipeline.types import ProblemSpec

HOLDOUT_FRACTION = 0.2
Split = tuple[np.ndarray, np.ndarray]


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
