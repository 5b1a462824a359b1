"""Load a dataset, apply the filter, validate the task against the data and encode the label.

``prepare`` runs the checks every task shares (label column present, rows before and after the
filter), then the task kind's own preparer from ``PREPARERS``: tabular tasks here; forecasting
(``forecast``) and sequence tasks (``sequence``) build their features from the raw rows.
``prepare_notes`` says, for the job's notes, what preparing left out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import pyarrow as pa

from tabstream.pipeline.tasks.filter_compile import apply_filter
from tabstream.pipeline.tasks.forecast import prepare_forecasting
from tabstream.pipeline.tasks.forecast_short import forecast_notes
from tabstream.pipeline.tasks.labels import drop_missing_labels, encode_target, plain_column
from tabstream.pipeline.tasks.sequence import prepare_sequence
from tabstream.pipeline.types import DataError, Prepared
from tabstream.schemas.filters import Filter
from tabstream.schemas.tasks import Task


class NotExecutableYet(DataError):
    """A task kind the schema accepts but this pipeline does not run yet."""


class TableSource(Protocol):
    """Anything that reads a Parquet table by key (e.g. an ArtifactStore)."""

    def read_parquet(self, key: str) -> pa.Table:
        """The Parquet table stored under ``key``."""
        ...


def load_table(source: TableSource, key: str) -> pa.Table:
    """Read the dataset stored under ``key``."""
    return source.read_parquet(key)


def prepare_tabular(table: pa.Table, task: Task) -> Prepared:
    """Drop rows with a missing label, encode it per the task kind; the rest are features."""
    label = task.label_column
    table, dropped = drop_missing_labels(table, label)
    spec, y = encode_target(plain_column(table.column(label)), task.task_kind, label)
    return Prepared(table.drop_columns([label]), y, spec, dropped, table.num_rows)


Preparer = Callable[[pa.Table, Any], Prepared]
PREPARERS: dict[str, Preparer] = {
    "regression": prepare_tabular,
    "binclass": prepare_tabular,
    "multiclass": prepare_tabular,
    "forecasting": prepare_forecasting,
    "sequence_regression": prepare_sequence,
    "sequence_binclass": prepare_sequence,
    "sequence_multiclass": prepare_sequence,
}
"""Task kind -> the function that turns the filtered table into ``Prepared`` data."""


def prepare(table: pa.Table, task: Task, filter: Filter | None = None) -> Prepared:
    """Filter ``table``, then prepare it with the task kind's preparer (``PREPARERS``)."""
    preparer = PREPARERS.get(task.task_kind)
    if preparer is None:
        raise NotExecutableYet(f"task kind {task.task_kind} is not executable yet")
    if task.label_column not in table.schema.names:
        raise DataError(f"label column {task.label_column!r} is not in the dataset")
    if table.num_rows == 0:
        raise DataError("the dataset has zero rows")
    table = apply_filter(table, filter)
    if table.num_rows == 0:
        raise DataError("the filter selected zero rows")
    return preparer(table, task)


def prepare_notes(prepared: Prepared) -> list[str]:
    """The job's notes on what preparing left out: rows with a missing label, short series."""
    notes = []
    if prepared.dropped_label_nulls:
        notes.append(f"dropped {prepared.dropped_label_nulls} rows with a missing label")
    return notes + forecast_notes(prepared.recipe)
