"""Property: a compiled filter selects exactly the rows an independent pandas oracle selects."""

from __future__ import annotations

import datetime as dt
import operator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tabstream.pipeline.tasks.filter_compile import apply_filter
from tabstream.schemas.filters import BoolExpr, Comparison, Filter, Not

BASE = dt.datetime(2020, 1, 1)
TIMES = [BASE + dt.timedelta(hours=h) for h in range(6)]
STRINGS = ["a", "b", "ab", ""]
OPS = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le,
       "gt": operator.gt, "ge": operator.ge}  # fmt: skip
ALL_OPS = [*OPS, "in", "not_in", "is_null", "is_not_null"]


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    n = draw(st.integers(0, 25))

    def col(values: st.SearchStrategy[Any]) -> list[Any]:
        return draw(st.lists(_maybe(values), min_size=n, max_size=n))

    floats = st.one_of(st.sampled_from([-1.0, 0.0, 0.5, 2.0]), st.just(float("nan")))
    return pa.table(
        {
            "i": pa.array(col(st.integers(-3, 3)), pa.int64()),
            "f": pa.array(col(floats), pa.float64()),
            "s": pa.array(col(st.sampled_from(STRINGS)), pa.string()),
            "t": pa.array(col(st.sampled_from(TIMES)), pa.timestamp("us")),
            "z": pa.array(
                [
                    None if v is None else v.replace(tzinfo=dt.UTC)
                    for v in col(st.sampled_from(TIMES))
                ],
                pa.timestamp("ns", "UTC"),
            ),
        }
    )


def _iso(when: dt.datetime, offset: bool) -> str:
    return (
        when.replace(tzinfo=dt.timezone(dt.timedelta(hours=1))).isoformat()
        if offset
        else when.isoformat()
    )


def _values(col: str) -> st.SearchStrategy[Any]:
    if col in ("i", "f"):
        return st.one_of(st.integers(-3, 3), st.sampled_from([-0.5, 0.5, 2.0]))
    if col == "s":
        return st.sampled_from(STRINGS)
    return st.builds(_iso, st.sampled_from(TIMES), st.booleans())


@st.composite
def comparisons(draw: st.DrawFn) -> Comparison:
    col = draw(st.sampled_from(["i", "f", "s", "t", "z"]))
    op = draw(st.sampled_from(ALL_OPS))
    if op in ("is_null", "is_not_null"):
        return Comparison(col=col, op=op)
    if op in ("in", "not_in"):
        return Comparison(
            col=col, op=op, value=draw(st.lists(_values(col), min_size=1, max_size=3))
        )
    return Comparison(col=col, op=op, value=draw(_values(col)))


def _combine(inner: st.SearchStrategy[Filter]) -> st.SearchStrategy[Filter]:
    bools = st.builds(
        BoolExpr, op=st.sampled_from(["and", "or"]), args=st.lists(inner, min_size=2, max_size=3)
    )
    return st.one_of(inner, st.builds(Not, arg=inner), bools)


filters: st.SearchStrategy[Filter] = _combine(_combine(comparisons()))  # depth <= 3


def _oracle_value(series: pd.Series, value: Any) -> Any:
    if not isinstance(value, str) or series.name == "s":
        return value
    stamp = pd.Timestamp(value)
    tz = getattr(series.dt, "tz", None)
    if tz is None:
        return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp
    return stamp.tz_convert(tz) if stamp.tzinfo else stamp.tz_localize(tz)


def oracle(df: pd.DataFrame, f: Filter) -> np.ndarray:
    """Row mask: missing cells (null/NaN/NaT) fail every comparison; `not` inverts the mask."""
    if isinstance(f, BoolExpr):
        masks = [oracle(df, a) for a in f.args]
        combine = np.logical_and if f.op == "and" else np.logical_or
        return np.asarray(combine.reduce(masks), dtype=bool)
    if isinstance(f, Not):
        return np.asarray(~oracle(df, f.arg), dtype=bool)
    s = df[f.col]
    present = np.asarray(s.notna().to_numpy(), dtype=bool)
    if f.op in ("is_null", "is_not_null"):
        return ~present if f.op == "is_null" else present
    if f.op in ("in", "not_in"):
        values = [_oracle_value(s, v) for v in f.value]  # type: ignore[union-attr]
        hit = s.isin(values).to_numpy()
        return np.asarray(present & (hit if f.op == "in" else ~hit), dtype=bool)
    cmp = OPS[f.op](s, _oracle_value(s, f.value)).to_numpy(dtype=bool)
    return np.asarray(present & cmp, dtype=bool)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=tables(), f=filters)
def test_compiled_filter_matches_pandas_oracle(table: pa.Table, f: Filter) -> None:
    df = table.to_pandas()
    expected = np.flatnonzero(oracle(df, f))
    marked = table.append_column("_row", pa.array(np.arange(table.num_rows)))
    got = apply_filter(marked, f).column("_row").to_numpy()
    assert got.tolist() == expected.tolist()
