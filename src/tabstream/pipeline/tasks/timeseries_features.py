"""Shared helpers of the forecasting and sequence tasks: column checks, timestamps, id groups.

Timestamp columns must be Arrow ``timestamp`` (any unit, with or without a time zone) or
``date32``/``date64``; integer or string "timestamps" are rejected with a clear error (cast them
before registering the dataset). Internally times are int64 nanoseconds since the epoch (UTC).
Ids may be any hashable Arrow type (ints, strings, dictionaries); a missing id is an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tabstream.pipeline.types import DataError

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class Inputs:
    """Model inputs built from raw rows: the feature table and one key row per prediction."""

    features: pa.Table
    keys: pa.Table
    fallback: np.ndarray | None = None
    """Per key row, the value predicted instead of the model's, NaN where the model predicts
    (forecasting: the series left out of training or unseen, see ``forecast_short``)."""

    def with_fallback(self, predictions: np.ndarray) -> np.ndarray:
        """The model's ``predictions`` (one per key row) with the fallback rows replaced."""
        if self.fallback is None or not np.isfinite(self.fallback).any():
            return predictions
        use = np.isfinite(self.fallback)
        out = np.asarray(predictions, dtype=np.float64).copy()
        out[use] = self.fallback[use]
        return out


@dataclass(frozen=True)
class Groups:
    """Rows sorted by (id, time): the permutation, id codes, group bounds and unique ids."""

    order: np.ndarray  # row permutation into sorted order
    codes: np.ndarray  # id code per sorted row (0..n_ids-1, ascending id order)
    times: np.ndarray  # int64 ns per sorted row
    starts: np.ndarray  # first sorted row of each id
    counts: np.ndarray  # rows per id
    ids: pa.Array  # unique ids, sorted; ids[code]

    @property
    def n_ids(self) -> int:
        """Number of distinct ids."""
        return len(self.starts)


def check_columns(table: pa.Table, roles: dict[str, str]) -> None:
    """``DataError`` naming the role and column of every task column missing from ``table``."""
    missing = [f"{role} {col!r}" for role, col in roles.items() if col not in table.column_names]
    if missing:
        raise DataError(f"the dataset lacks the task's {', '.join(missing)} column(s)")


def timestamps_ns(table: pa.Table, column: str) -> np.ndarray:
    """The timestamp/date column ``column`` as int64 ns since the epoch; errors name it."""
    col = table.column(column)
    typ = col.type.value_type if pa.types.is_dictionary(col.type) else col.type
    if pa.types.is_timestamp(typ):
        ints = col.cast(typ).cast(pa.timestamp(typ.unit)).cast(pa.int64())
        scale = NS_PER_S // {"s": 1, "ms": 1000, "us": 1_000_000, "ns": NS_PER_S}[typ.unit]
    elif pa.types.is_date(typ):
        ints = col.cast(typ).cast(pa.date32()).cast(pa.int32()).cast(pa.int64())
        scale = 86_400 * NS_PER_S
    else:
        raise DataError(
            f"timestamp column {column!r} must be a timestamp or date column, not {typ}"
        )
    if ints.null_count:
        raise DataError(f"timestamp column {column!r} has {ints.null_count} missing values")
    return np.asarray(ints.to_numpy(), dtype=np.int64) * scale


def group_rows(table: pa.Table, id_column: str, times: np.ndarray) -> Groups:
    """Sort rows by (id, time) and describe the id groups; a missing id is a ``DataError``."""
    ids = table.column(id_column)
    if pa.types.is_dictionary(ids.type):
        ids = ids.cast(ids.type.value_type)
    if ids.null_count:
        raise DataError(f"id column {id_column!r} has {ids.null_count} missing values")
    uniques = pc.unique(ids)
    uniques = uniques.take(pc.sort_indices(uniques))
    codes = np.asarray(pc.index_in(ids, value_set=uniques).to_numpy(), dtype=np.int64)
    order = np.lexsort((times, codes))
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    counts = np.diff(np.r_[starts, len(order)])
    return Groups(order, sorted_codes, times[order], starts, counts, uniques)


def id_repr(groups: Groups, code: int) -> str:
    """The id of group ``code`` as shown in error messages."""
    return repr(groups.ids[int(code)].as_py())


def to_timestamps(ns: np.ndarray, like: pa.DataType) -> pa.Array:
    """int64 ns values as a ``timestamp[ns]`` array with ``like``'s time zone (if any)."""
    tz = like.tz if pa.types.is_timestamp(like) else None
    return pa.array(np.asarray(ns, dtype=np.int64), pa.int64()).cast(pa.timestamp("ns", tz=tz))


def plain_type(col: pa.ChunkedArray | pa.Array) -> pa.DataType:
    """The column's type, with dictionaries seen as their value type."""
    return col.type.value_type if pa.types.is_dictionary(col.type) else col.type
