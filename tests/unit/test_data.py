"""Loading, filtering, validating and label encoding on the real datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tabstream.pipeline.tasks.prepare import load_table, prepare
from tabstream.pipeline.types import DataError
from tabstream.schemas.filters import Comparison
from tabstream.schemas.tasks import (
    BinclassTask,
    ForecastingTask,
    MulticlassTask,
    RegressionTask,
    SequenceBinclassTask,
)


class _Folder:
    def __init__(self, root: Path) -> None:
        self.root = root

    def read_parquet(self, key: str) -> pa.Table:
        return pq.read_table(self.root / key)


def _read(shared_data: Path, name: str) -> pa.Table:
    return load_table(_Folder(shared_data), f"{name}.parquet")


def test_binclass_adult(shared_data: Path) -> None:
    table = _read(shared_data, "adult")
    p = prepare(table, BinclassTask(label_column="income"))
    assert p.spec.kind == "binclass" and p.spec.classes == ("<=50K", ">50K")
    assert (
        p.features.num_columns == table.num_columns - 1 and "income" not in p.features.schema.names
    )
    assert p.y.dtype == np.int64 and set(np.unique(p.y)) == {0, 1}
    assert p.n_rows == len(p.y) == p.features.num_rows == table.num_rows
    expected = (table.column("income").to_numpy(zero_copy_only=False) == ">50K").sum()
    assert p.y.sum() == expected and p.dropped_label_nulls == 0


def test_multiclass_segment_classes_sorted(shared_data: Path) -> None:
    p = prepare(_read(shared_data, "segment"), MulticlassTask(label_column="category"))
    assert p.spec.n_classes == 7 and list(p.spec.classes or ()) == sorted(p.spec.classes or ())
    assert np.bincount(p.y).min() > 0


def test_regression_with_filter(shared_data: Path) -> None:
    table = _read(shared_data, "bikeshare")
    f = Comparison(col="ts", op="lt", value="2011-02-01")
    p = prepare(table, RegressionTask(label_column="bikers"), f)
    assert p.spec.classes is None and p.y.dtype == np.float64
    assert p.n_rows == 688 and "ts" in p.features.schema.names


def test_label_nulls_dropped_and_reported(shared_data: Path) -> None:
    table = _read(shared_data, "abalone").slice(0, 100)
    rings = table.column("rings").to_pylist()
    rings[:7] = [None] * 7
    table = table.set_column(table.schema.get_field_index("rings"), "rings", pa.array(rings))
    p = prepare(table, RegressionTask(label_column="rings"))
    assert p.dropped_label_nulls == 7 and p.n_rows == 93 and not np.isnan(p.y).any()


def test_nan_float_labels_count_as_missing() -> None:
    table = pa.table({"x": [1, 2, 3], "y": [1.0, float("nan"), 2.0]})
    assert prepare(table, RegressionTask(label_column="y")).dropped_label_nulls == 1


def test_all_labels_missing() -> None:
    table = pa.table({"x": [1, 2], "y": pa.array([None, None], pa.string())})
    with pytest.raises(DataError, match="'y'"):
        prepare(table, BinclassTask(label_column="y"))


def test_missing_label_column(shared_data: Path) -> None:
    with pytest.raises(DataError, match="'nope'"):
        prepare(_read(shared_data, "credit_g"), BinclassTask(label_column="nope"))


def test_zero_rows_after_filter(shared_data: Path) -> None:
    f = Comparison(col="ts", op="lt", value="2000-01-01")
    with pytest.raises(DataError, match="zero rows"):
        prepare(_read(shared_data, "bikeshare"), RegressionTask(label_column="bikers"), f)


def test_binclass_needs_two_classes(shared_data: Path) -> None:
    with pytest.raises(DataError, match=r"exactly 2 classes.*'category'"):
        prepare(_read(shared_data, "segment"), BinclassTask(label_column="category"))


def test_multiclass_needs_three(shared_data: Path) -> None:
    with pytest.raises(DataError, match=r"at least 3 classes.*'income'"):
        prepare(_read(shared_data, "adult"), MulticlassTask(label_column="income"))


def test_regression_needs_numeric(shared_data: Path) -> None:
    with pytest.raises(DataError, match="'creditability'"):
        prepare(_read(shared_data, "credit_g"), RegressionTask(label_column="creditability"))


def test_sequential_kinds_are_executable(shared_data: Path) -> None:
    table = _read(shared_data, "bikeshare")
    task = ForecastingTask(
        label_column="bikers", id_column="season", timestamp_column="ts", horizon=3
    )
    assert prepare(table, task).recipe is not None  # see test_forecast / test_sequence
    seq = SequenceBinclassTask(label_column="holiday", id_column="season", timestamp_column="ts")
    with pytest.raises(DataError, match="'holiday' varies within id"):
        prepare(table, seq)


def test_dictionary_and_int_labels() -> None:
    table = pa.table({"x": [1, 2, 3, 4], "y": pa.array(["b", "a", "b", "c"]).dictionary_encode()})
    p = prepare(table, MulticlassTask(label_column="y"))
    assert p.spec.classes == ("a", "b", "c") and p.y.tolist() == [1, 0, 1, 2]
    ints = pa.table({"x": [1, 2, 3], "y": [10, 2, 10]})
    q = prepare(ints, BinclassTask(label_column="y"))
    assert q.spec.classes == (2, 10) and q.y.tolist() == [1, 0, 1]
    assert pc.sum(q.features.column("x")).as_py() == 6


def test_empty_text_labels_are_missing_and_dropped_with_a_count() -> None:
    table = pa.table({"x": [1, 2, 3, 4, 5], "y": ["a", "", "b", "  ", None]})
    prepared = prepare(table, BinclassTask(task_kind="binclass", label_column="y"))
    assert prepared.dropped_label_nulls == 3
    assert prepared.spec.classes == ("a", "b")


def test_an_empty_dataset_is_not_blamed_on_a_filter() -> None:
    table = pa.table({"x": pa.array([], pa.int64()), "y": pa.array([], pa.string())})
    with pytest.raises(DataError, match="the dataset has zero rows"):
        prepare(table, BinclassTask(task_kind="binclass", label_column="y"))
    two = pa.table({"x": [1, 2], "y": ["a", "b"]})
    nothing = Comparison(col="x", op="gt", value=5)
    with pytest.raises(DataError, match="the filter selected zero rows"):
        prepare(two, BinclassTask(task_kind="binclass", label_column="y"), nothing)
