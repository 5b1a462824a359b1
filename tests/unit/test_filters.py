"""Filter compilation: examples on bikeshare, coercion, strictness and null semantics."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tabstream.pipeline.tasks.filter_compile import FilterError, apply_filter
from tabstream.schemas.filters import BoolExpr, Comparison, Filter, Not


@pytest.fixture(scope="module")
def bikeshare(shared_data: Path) -> pa.Table:
    return pq.read_table(shared_data / "bikeshare.parquet")


def test_bikeshare_timestamp_range(bikeshare: pa.Table) -> None:
    f = BoolExpr(
        op="and",
        args=[
            Comparison(col="ts", op="ge", value="2011-06-01"),
            Comparison(col="ts", op="lt", value="2011-07-01T00:00:00"),
        ],
    )
    ts = bikeshare.column("ts").to_pandas()
    expected = int(((ts >= "2011-06-01") & (ts < "2011-07-01")).sum())
    out = apply_filter(bikeshare, f)
    assert 0 < out.num_rows == expected
    assert out.column("ts").to_pandas().dt.month.eq(6).all()


def test_bikeshare_mixed_columns(bikeshare: pa.Table) -> None:
    f = BoolExpr(
        op="or",
        args=[
            Comparison(col="weathersit", op="in", value=["clear", "light rain/snow"]),
            Not(arg=Comparison(col="hr", op="lt", value=20)),
        ],
    )
    df = bikeshare.to_pandas()
    expected = int((df.weathersit.isin(["clear", "light rain/snow"]) | ~(df.hr < 20)).sum())
    assert 0 < apply_filter(bikeshare, f).num_rows == expected < bikeshare.num_rows


def test_tz_aware_column_reads_naive_strings_in_column_zone() -> None:
    t = pa.table(
        {"ts": pa.array([dt.datetime(2024, 1, 1, 0, 30, tzinfo=dt.UTC)], pa.timestamp("us", "UTC"))}
    )
    paris = t.cast(pa.schema([pa.field("ts", pa.timestamp("us", "Europe/Paris"))]))
    # 00:30 UTC is 01:30 in Paris.
    assert (
        apply_filter(paris, Comparison(col="ts", op="ge", value="2024-01-01T01:00")).num_rows == 1
    )
    assert apply_filter(t, Comparison(col="ts", op="ge", value="2024-01-01T01:00")).num_rows == 0
    aware = Comparison(col="ts", op="eq", value="2024-01-01T01:30:00+01:00")
    assert apply_filter(t, aware).num_rows == 1


def test_aware_string_against_naive_column_is_utc() -> None:
    t = pa.table({"ts": pa.array([dt.datetime(2024, 1, 1, 0, 30)], pa.timestamp("ns"))})
    f = Comparison(col="ts", op="eq", value="2024-01-01T02:30:00+02:00")
    assert apply_filter(t, f).num_rows == 1


def test_date_and_dictionary_columns() -> None:
    t = pa.table(
        {
            "d": pa.array([dt.date(2020, 1, 1), dt.date(2021, 1, 1), None], pa.date32()),
            "s": pa.array(["a", "b", None]).dictionary_encode(),
        }
    )
    assert apply_filter(t, Comparison(col="d", op="gt", value="2020-06-01")).num_rows == 1
    assert apply_filter(t, Comparison(col="s", op="ne", value="a")).num_rows == 1
    assert apply_filter(t, Comparison(col="s", op="is_null")).num_rows == 1


def test_null_semantics() -> None:
    t = pa.table({"x": pa.array([1.0, float("nan"), None, 2.0])})

    def count(f: Filter) -> int:
        return int(apply_filter(t, f).num_rows)

    assert count(Comparison(col="x", op="ne", value=1)) == 1
    assert count(Comparison(col="x", op="not_in", value=[1])) == 1
    assert count(Comparison(col="x", op="is_null")) == 2
    assert count(Comparison(col="x", op="is_not_null")) == 2
    assert count(Not(arg=Comparison(col="x", op="eq", value=1))) == 3


@pytest.mark.parametrize(
    ("col", "value"),
    [("i", "3"), ("i", True), ("s", 3), ("ts", 5), ("ts", "not a date"), ("b", 1), ("d", "x")],
)
def test_type_mismatch_is_an_error_naming_the_column(col: str, value: object) -> None:
    t = pa.table(
        {
            "i": pa.array([1]),
            "s": pa.array(["a"]),
            "ts": pa.array([dt.datetime(2020, 1, 1)], pa.timestamp("ns")),
            "b": pa.array([True]),
            "d": pa.array([dt.date(2020, 1, 1)]),
        }
    )
    with pytest.raises(FilterError, match=repr(col)) as info:
        apply_filter(t, Comparison(col=col, op="eq", value=value))
    assert str(t.schema.field(col).type) in str(info.value)


def test_unknown_column() -> None:
    t = pa.table({"i": [1]})
    with pytest.raises(FilterError, match="'nope'"):
        apply_filter(t, Not(arg=Comparison(col="nope", op="is_null")))


def test_in_list_out_of_range_for_narrow_ints() -> None:
    t = pa.table({"i": pa.array([1, 2], pa.int8())})
    with pytest.raises(FilterError, match="'i'"):
        apply_filter(t, Comparison(col="i", op="in", value=[1, 1000]))
    assert apply_filter(t, Comparison(col="i", op="in", value=[1, 2.5])).num_rows == 1


def test_none_filter_keeps_everything() -> None:
    t = pa.table({"i": [1, 2]})
    assert apply_filter(t, None).num_rows == 2
