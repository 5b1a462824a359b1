"""Seeded K-fold and holdout splits: determinism, stratification, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tabstream.pipeline.tasks.prepare import prepare
from tabstream.pipeline.tasks.splits import make_splits
from tabstream.pipeline.types import DataError, ProblemSpec
from tabstream.schemas.tasks import BinclassTask

BIN = ProblemSpec("binclass", "y", (0, 1))
REG = ProblemSpec("regression", "y")


@pytest.fixture(scope="module")
def credit_y(shared_data: Path) -> np.ndarray:
    table = pq.read_table(shared_data / "credit_g.parquet")
    return prepare(table, BinclassTask(label_column="creditability")).y


def _check_partition(splits: list[tuple[np.ndarray, np.ndarray]], n: int) -> None:
    for tr, va in splits:
        assert tr.dtype == va.dtype == np.int64
        assert np.intersect1d(tr, va).size == 0 and tr.size + va.size == n


def test_stratified_kfold_deterministic_and_stratified(credit_y: np.ndarray) -> None:
    a = make_splits(credit_y, BIN, 5, random_state=7)
    b = make_splits(credit_y, BIN, 5, random_state=7)
    c = make_splits(credit_y, BIN, 5, random_state=8)
    assert len(a) == 5 and all(np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x[1], y[1]) for x, y in zip(a, c, strict=True))
    _check_partition(a, len(credit_y))
    assert np.array_equal(np.sort(np.concatenate([va for _, va in a])), np.arange(len(credit_y)))
    rate = credit_y.mean()
    assert all(abs(credit_y[va].mean() - rate) < 0.01 for _, va in a)


def test_holdout_is_stratified_80_20(credit_y: np.ndarray) -> None:
    [(tr, va)] = make_splits(credit_y, BIN, None, random_state=1)
    assert va.size == 200 and tr.size == 800
    assert abs(credit_y[va].mean() - credit_y.mean()) < 0.01
    [(tr2, va2)] = make_splits(credit_y, BIN, None, random_state=1)
    assert np.array_equal(va, va2) and np.array_equal(tr, tr2)


def test_regression_kfold_and_holdout() -> None:
    y = np.linspace(0, 1, 53)
    splits = make_splits(y, REG, 4, random_state=0)
    _check_partition(splits, 53)
    [(tr, va)] = make_splits(y, REG, None, random_state=0)
    assert va.size == 11 and tr.size == 42


def test_too_many_folds() -> None:
    with pytest.raises(DataError, match="more than the 5 rows"):
        make_splits(np.arange(5.0), REG, 6, random_state=0)
    y = np.array([0] * 20 + [1] * 3)
    with pytest.raises(DataError, match="smallest class"):
        make_splits(y, BIN, 4, random_state=0)
    with pytest.raises(DataError, match="holdout"):
        make_splits(np.array([0] * 20 + [1]), BIN, None, random_state=0)
