"""Load a dataset, apply the filter, validate the task against the data and encode the label."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tabstream.pipeline.filters import apply_filter
from tabstream.pipeline.types import ProblemSpec
from tabstream.schemas.filters import Filter
from tabstream.schemas.tasks import Task

TABULAR_KINDS = frozenset({"regression", "binclass", "multiclass"})
SEQUENCE_KINDS = frozenset({"sequence_regression", "sequence_binclass", "sequence_multiclass"})
EXECUTABLE_KINDS = TABULAR_KINDS | SEQUENCE_KINDS | {"forecasting"}
Splitter = Callable[[int | None, int], list[tuple[np.ndarray, np.ndarray]]]


class DataError(ValueError):
    """The data cannot serve the task (missing label, too few classes, no rows...)."""


class NotExecutableYet(DataError):
    """A task kind the schema accepts but this pipeline does not run yet."""


class TableSource(Protocol):
    """Anything that reads a Parquet table by key (e.g. an ArtifactStore)."""

    def read_parquet(self, key: str) -> pa.Table:
        """The Parquet table stored under ``key``."""
        ...


@dataclass(frozen=True)
class Prepared:
    """Filtered, validated data: features, encoded labels and the problem spec.

    Forecasting and sequence tasks (``forecast``, ``sequence``) build ``features`` from the raw
    rows and add: ``recipe`` (JSON, stored in the bundle so predict can rebuild the features),
    ``split`` (their own splitter, ``(n_splits, random_state) -> splits``), ``metric_kind``
    (the kind metrics are resolved for) and ``mase_scale``.
    """

    features: pa.Table
    y: np.ndarray
    spec: ProblemSpec
    dropped_label_nulls: int
    n_rows: int
    recipe: dict[str, Any] | None = None
    split: Splitter | None = None
    metric_kind: str | None = None
    mase_scale: float = 1.0


def load_table(source: TableSource, key: str) -> pa.Table:
    """Read the dataset stored under ``key``."""
    return source.read_parquet(key)


def prepare(table: pa.Table, task: Task, filter: Filter | None = None) -> Prepared:
    """Filter ``table``, drop rows with a missing label and encode it per ``task``."""
    kind = task.task_kind
    if kind not in EXECUTABLE_KINDS:
        raise NotExecutableYet(f"task kind {kind} is not executable yet")
    label = task.label_column
    if label not in table.schema.names:
        raise DataError(f"label column {label!r} is not in the dataset")
    if table.num_rows == 0:
        raise DataError("the dataset has zero rows")
    table = apply_filter(table, filter)
    if table.num_rows == 0:
        raise DataError("the filter selected zero rows")
    if kind not in TABULAR_KINDS:
        return _prepare_sequential(table, task)
    table, dropped = _drop_missing_labels(table, label)
    column = _plain(table.column(label))
    if kind == "regression":
        spec, y = ProblemSpec("regression", label), _regression_target(column, label)
    else:
        classes = _classes(column)
        _check_classes(kind, label, classes)
        spec = ProblemSpec(kind, label, classes)  # type: ignore[arg-type]
        y = _encode(column, classes)
    features = table.drop_columns([label])
    return Prepared(features, y, spec, dropped, table.num_rows)


def _prepare_sequential(table: pa.Table, task: Task) -> Prepared:
    # imported here: forecast and sequence import this module
    from tabstream.pipeline.forecast import prepare_forecasting
    from tabstream.pipeline.sequence import prepare_sequence

    if task.task_kind == "forecasting":
        return prepare_forecasting(table, task)
    return prepare_sequence(table, task)  # type: ignore[arg-type]


def _drop_missing_labels(table: pa.Table, label: str) -> tuple[pa.Table, int]:
    """Rows whose label is null, NaN or (text labels) empty are dropped and counted."""
    col = table.column(label)
    nan_is_null = pa.types.is_floating(col.type)
    missing = pc.is_null(col, nan_is_null=nan_is_null)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        missing = pc.or_kleene(missing, pc.equal(pc.utf8_trim_whitespace(col), ""))
    n_missing = int(pc.sum(missing).as_py() or 0)
    if n_missing == 0:
        return table, 0
    kept = table.filter(pc.invert(missing))
    if kept.num_rows == 0:
        raise DataError(f"label column {label!r} is missing in every selected row")
    return kept, n_missing


def _plain(col: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_dictionary(col.type):
        return col.cast(col.type.value_type)
    return col


def _regression_target(col: pa.ChunkedArray, label: str) -> np.ndarray:
    typ = col.type
    if not (pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ)):
        raise DataError(f"regression needs a numeric label; column {label!r} is {typ}")
    return np.asarray(col.cast(pa.float64()).to_numpy(), dtype=np.float64)


def _classes(col: pa.ChunkedArray) -> tuple[Any, ...]:
    values = pc.unique(col).to_pylist()
    try:
        return tuple(sorted(values))
    except TypeError:
        return tuple(sorted(values, key=str))


def _check_classes(kind: str, label: str, classes: tuple[Any, ...]) -> None:
    shown = list(classes[:10])
    if kind == "binclass" and len(classes) != 2:
        raise DataError(
            f"binclass needs exactly 2 classes; label column {label!r} has {len(classes)}: {shown}"
        )
    if kind == "multiclass" and len(classes) < 3:
        raise DataError(
            f"multiclass needs at least 3 classes; label column {label!r} has {len(classes)}: "
            f"{shown} (use binclass for two)"
        )


def _encode(col: pa.ChunkedArray, classes: tuple[Any, ...]) -> np.ndarray:
    codes = pc.index_in(col, value_set=pa.array(list(classes), col.type))
    return np.asarray(codes.to_numpy(), dtype=np.int64)
