"""Row-wise scoring of Arrow tables with a loaded model, for prediction jobs (the worker streams
a dataset through ``BatchScorer.score`` one record batch at a time).

Inputs are read as the model's recorded input types, as the predict endpoint reads cells
(``predict.samples_table``): numbers as float64, booleans, timestamps and dates, anything else
as strings. The output has one row per input row: ``prediction`` (the class label, or the
value) and, for classification, one float64 ``proba_<class>`` column per class in the model's
class order (the ``probabilities`` and ``classes`` of the predict endpoint). Non-finite values
are nulls, as the endpoint's are.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tabstream.pipeline.finish.bundle import LoadedModel

__all__ = ["BatchInputError", "BatchScorer", "input_type"]

_NUMERIC = ("int", "uint", "float", "double", "halffloat", "decimal")


class BatchInputError(ValueError):
    """Input the model cannot score row-wise (a missing feature, an unreadable cell, a
    forecasting or sequence model); the message names the feature or the reason."""


def input_type(type_str: str) -> pa.DataType:
    """The Arrow type a feature recorded as ``type_str`` is scored as."""
    t = type_str.lower()
    if t.startswith(_NUMERIC):
        return pa.float64()
    if t == "bool":
        return pa.bool_()
    if t.startswith("date"):
        return pa.date32()
    if t.startswith("timestamp"):
        unit = t[t.find("[") + 1 : t.find("]")].split(",")[0].strip() if "[" in t else "us"
        return pa.timestamp(unit if unit in ("s", "ms", "us", "ns") else "us")
    return pa.string()


class BatchScorer:
    """Scores tables of raw rows with ``model`` (tabular models only: a forecasting or
    sequence model predicts per series, not per row, and is refused)."""

    def __init__(self, model: LoadedModel) -> None:
        if model.recipe is not None:
            raise BatchInputError(
                "forecasting and sequence models cannot be batch-scored yet (they predict one "
                "value per series, not per row): use POST /v1/models/{model_id}/predict"
            )
        self.model = model
        self.input_types = {name: input_type(t) for name, t in model.features}
        self.schema = _output_schema(model)

    @property
    def feature_names(self) -> list[str]:
        """The model's input columns, in its order."""
        return list(self.input_types)

    def missing(self, available: Iterable[str]) -> list[str]:
        """The model's features that ``available`` lacks, in the model's order."""
        present = set(available)
        return [n for n in self.input_types if n not in present]

    def score(self, table: pa.Table) -> pa.Table:
        """One output row per row of ``table`` (which holds at least the model's features)."""
        missing = self.missing(table.column_names)
        if missing:
            raise BatchInputError(f"the data lacks the model's features {missing}")
        if table.num_rows == 0:
            return self.schema.empty_table()
        raw = self.model.predict_raw(self._conform(table))
        classes = self.model.spec.classes
        if classes is None:
            return pa.table({"prediction": _floats(raw.reshape(-1))}, schema=self.schema)
        labels = pa.array(list(classes), self.schema.field("prediction").type)
        columns = [labels.take(pa.array(np.argmax(raw, axis=1)))]
        columns += [_floats(raw[:, j]) for j in range(len(classes))]
        return pa.Table.from_arrays(columns, schema=self.schema)

    def _conform(self, table: pa.Table) -> pa.Table:
        columns = {}
        for name, target in self.input_types.items():
            column = table.column(name)
            try:
                columns[name] = column if column.type == target else _cast(column, target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise BatchInputError(f"feature {name!r} ({target}): {exc}") from None
        return pa.table(columns)


def _cast(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    temporal = pa.types.is_timestamp(target) or pa.types.is_date(target)
    if pa.types.is_timestamp(column.type) and column.type.tz is not None and temporal:
        column = column.cast(pa.timestamp(column.type.unit))
    return pc.cast(column, target, safe=not temporal)


def _output_schema(model: LoadedModel) -> pa.Schema:
    classes = model.spec.classes
    if classes is None:
        return pa.schema([("prediction", pa.float64())])
    label_type = pa.array(list(classes)).type
    probas = [(f"proba_{c}", pa.float64()) for c in classes]
    return pa.schema([("prediction", label_type), *probas])


def _floats(values: np.ndarray) -> pa.Array:
    values = np.asarray(values, dtype=np.float64)
    return pa.array(values, pa.float64(), mask=~np.isfinite(values))
