"""Compile a request filter (``Comparison | BoolExpr | Not``) to a pyarrow compute expression.

Semantics (SQL-like, always a plain boolean selection):
- A *missing* cell is a null, or a NaN in a floating-point column.
- Every comparison, ``in`` and ``not_in`` is false on a missing cell, so ``ne`` and ``not_in``
  exclude missing rows too; ``is_null`` is true exactly on missing cells.
- A column of arrow type ``null`` is all missing: only ``is_null``/``is_not_null`` can select.
- ``not f`` selects the rows that ``f`` does not select (missing cells included).
- Values are coerced to the column's arrow type and must fit it: numbers for numeric columns,
  strings for string columns, booleans for boolean columns, ISO-8601 strings for timestamp and
  date columns. Anything else (e.g. ``"3"`` against an integer column) is a ``FilterError``.
- Timestamps: a naive string against a tz-aware column is read as wall time in the column's
  zone; an offset-aware string against a naive column is converted to UTC and compared as naive
  UTC wall time (naive columns are taken to hold UTC).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tabstream.schemas.filters import BoolExpr, Comparison, Filter, Not

_CMP = {
    "eq": "equal",
    "ne": "not_equal",
    "lt": "less",
    "le": "less_equal",
    "gt": "greater",
    "ge": "greater_equal",
}


class FilterError(ValueError):
    """A filter that does not fit the table (unknown column, value of the wrong type)."""


def compile_filter(f: Filter, schema: pa.Schema) -> pc.Expression:
    """Compile ``f`` against ``schema`` into a non-null boolean expression (see module doc)."""
    if isinstance(f, BoolExpr):
        parts = [compile_filter(a, schema) for a in f.args]
        out = parts[0]
        for p in parts[1:]:
            out = out & p if f.op == "and" else out | p
        return out
    if isinstance(f, Not):
        return ~pc.coalesce(compile_filter(f.arg, schema), pc.scalar(False))
    return _compile_cmp(f, schema)


def apply_filter(table: pa.Table, f: Filter | None) -> pa.Table:
    """The rows of ``table`` selected by ``f`` (all rows when ``f`` is None)."""
    if f is None:
        return table
    return table.filter(compile_filter(f, table.schema))


def _compile_cmp(c: Comparison, schema: pa.Schema) -> pc.Expression:
    if c.col not in schema.names:
        raise FilterError(f"filter column {c.col!r} is not in the dataset")
    typ = schema.field(c.col).type
    field = pc.field(c.col)
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
        field = field.cast(typ)
    if pa.types.is_decimal(typ):
        typ = pa.float64()
        field = field.cast(typ)
    missing = field.is_null(nan_is_null=pa.types.is_floating(typ))
    if c.op == "is_null":
        return missing
    if c.op == "is_not_null":
        return ~missing
    if pa.types.is_null(typ):
        return pc.scalar(False)
    if c.op in ("in", "not_in"):
        values = c.value if isinstance(c.value, list) else [c.value]
        value_set, field = _value_set(c.col, typ, values, field)
        hit = pc.is_in(field, value_set=value_set)
        return ~missing & (hit if c.op == "in" else ~hit)
    value = _coerce(c.col, typ, c.value)
    return ~missing & getattr(pc, _CMP[c.op])(field, value)


def _value_set(
    col: str, typ: pa.DataType, values: list[Any], field: pc.Expression
) -> tuple[pa.Array, pc.Expression]:
    scalars = [_coerce(col, typ, v) for v in values]
    if pa.types.is_integer(typ) and any(pa.types.is_floating(s.type) for s in scalars):
        return pa.array([float(s.as_py()) for s in scalars], pa.float64()), field.cast(pa.float64())
    if _is_numeric(typ):
        try:
            return pa.array([s.as_py() for s in scalars]).cast(typ), field
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise FilterError(
                f"filter values {values!r} do not fit column {col!r} ({typ})"
            ) from exc
    return pa.array([s.as_py() for s in scalars], typ), field


def _is_numeric(typ: pa.DataType) -> bool:
    return bool(pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ))


def _coerce(col: str, typ: pa.DataType, value: Any) -> pa.Scalar:
    try:
        if _is_numeric(typ) and isinstance(value, int | float) and not isinstance(value, bool):
            return pa.scalar(value)
        if pa.types.is_boolean(typ) and isinstance(value, bool):
            return pa.scalar(value)
        if (pa.types.is_string(typ) or pa.types.is_large_string(typ)) and isinstance(value, str):
            return pa.scalar(value, typ)
        if pa.types.is_timestamp(typ) and isinstance(value, str):
            return _timestamp(value, typ)
        if pa.types.is_date(typ) and isinstance(value, str):
            return pa.scalar(dt.date.fromisoformat(value), typ)
    except (ValueError, OverflowError, pa.ArrowException) as exc:
        raise _mismatch(col, typ, value) from exc
    raise _mismatch(col, typ, value)


def _mismatch(col: str, typ: pa.DataType, value: Any) -> FilterError:
    return FilterError(f"filter value {value!r} does not fit column {col!r} of type {typ}")


def _timestamp(text: str, typ: pa.TimestampType) -> pa.Scalar:
    when = dt.datetime.fromisoformat(text)
    if typ.tz is None:
        if when.tzinfo is not None:
            when = when.astimezone(dt.UTC).replace(tzinfo=None)
        return pa.scalar(when, typ)
    if when.tzinfo is not None:
        return pa.scalar(when, typ)
    naive = pa.array([when], pa.timestamp(typ.unit))
    return pc.assume_timezone(naive, timezone=typ.tz)[0]
