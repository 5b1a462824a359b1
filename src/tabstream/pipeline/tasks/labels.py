"""Labels: missing labels dropped, regression targets as float64, classes found, checked and
encoded as int64 codes 0..K-1 in sorted class order (tabular and sequence tasks alike)."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tabstream.pipeline.types import DataError, ProblemSpec, TaskKind


def encode_target(col: pa.ChunkedArray, kind: str, label: str) -> tuple[ProblemSpec, np.ndarray]:
    """The problem spec and encoded labels of a label column, for the tabular task ``kind``
    ("regression", "binclass" or "multiclass")."""
    if kind == "regression":
        return ProblemSpec("regression", label), regression_target(col, label)
    classes = classes_of(col)
    check_classes(kind, label, classes)
    return ProblemSpec(cast(TaskKind, kind), label, classes), encode_labels(col, classes)


def drop_missing_labels(table: pa.Table, label: str) -> tuple[pa.Table, int]:
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


def plain_column(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """The column with a dictionary type decoded to its value type."""
    if pa.types.is_dictionary(col.type):
        return col.cast(col.type.value_type)
    return col


def regression_target(col: pa.ChunkedArray, label: str) -> np.ndarray:
    """A numeric label column as float64; ``DataError`` naming the column otherwise."""
    typ = col.type
    if not (pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ)):
        raise DataError(f"regression needs a numeric label; column {label!r} is {typ}")
    return np.asarray(col.cast(pa.float64()).to_numpy(), dtype=np.float64)


def classes_of(col: pa.ChunkedArray) -> tuple[Any, ...]:
    """The distinct labels, sorted (by their text when their values do not compare)."""
    values = pc.unique(col).to_pylist()
    try:
        return tuple(sorted(values))
    except TypeError:
        return tuple(sorted(values, key=str))


def check_classes(kind: str, label: str, classes: tuple[Any, ...]) -> None:
    """Binclass needs exactly 2 classes, multiclass at least 3 (``DataError`` naming them)."""
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


def encode_labels(col: pa.ChunkedArray, classes: tuple[Any, ...]) -> np.ndarray:
    """Each label's index in ``classes`` as int64."""
    codes = pc.index_in(col, value_set=pa.array(list(classes), col.type))
    return np.asarray(codes.to_numpy(), dtype=np.int64)
