"""Preprocessing on adult (categoricals + nulls) and synthetic edge cases, both kinds."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tabstream.pipeline.tasks.preprocess import Preprocessor

ADULT_CATS = ["workclass", "education", "marital-status", "occupation", "relationship",
              "race", "gender", "native-country"]  # fmt: skip


@pytest.fixture(scope="module")
def adult(shared_data: Path) -> pa.Table:
    return pq.read_table(shared_data / "adult.parquet").drop_columns(["income"])


def test_tree_on_adult(adult: pa.Table) -> None:
    fm = Preprocessor("tree").fit_transform(adult)
    assert fm.values.shape == (adult.num_rows, 14) and fm.values.dtype == np.float32
    cat_names = [n for n, c in zip(fm.names, fm.categorical, strict=True) if c]
    assert sorted(cat_names) == sorted(ADULT_CATS)
    col = fm.names.index("workclass")
    n_null = adult.column("workclass").null_count
    assert n_null > 0 and int(np.isnan(fm.values[:, col]).sum()) == n_null
    expected_card = len(pc.unique(adult.column("workclass")).drop_null())
    assert fm.cardinalities[cat_names.index("workclass")] == expected_card
    assert np.nanmax(fm.values[:, col]) == expected_card - 1


def test_nn_on_adult(adult: pa.Table) -> None:
    fm = Preprocessor("nn").fit_transform(adult)
    assert not np.isnan(fm.values).any() and not any(fm.categorical) and fm.cardinalities == ()
    cards = {c: len(pc.unique(adult.column(c)).drop_null()) for c in ADULT_CATS}
    one_hot = sum(k for k in cards.values() if k <= 32) + sum(1 for k in cards.values() if k > 32)
    assert fm.values.shape == (adult.num_rows, 6 + one_hot)
    age = fm.values[:, fm.names.index("age")]
    assert abs(age.mean()) < 1e-3 and abs(age.std() - 1) < 1e-3
    block = [i for i, n in enumerate(fm.names) if n.startswith("workclass=")]
    rows = fm.values[:, block].sum(axis=1)
    assert np.array_equal(rows == 0, adult.column("workclass").is_null().to_numpy(False))


def test_fit_uses_training_fold_only(adult: pa.Table) -> None:
    train, test = adult.slice(0, 1000), adult.slice(1000)
    state = Preprocessor("nn").fit(train).state()
    age = {c["name"]: c for c in state["columns"]}["age"]
    train_age = train.column("age").to_numpy().astype(float)
    assert age["mean"] == pytest.approx(train_age.mean())
    assert age["median"] == pytest.approx(np.median(train_age))
    countries = {c["name"]: c for c in state["columns"]}["native-country"]["categories"]
    assert set(countries) == set(pc.unique(train.column("native-country")).drop_null().to_pylist())
    assert len(countries) < len(pc.unique(test.column("native-country")).drop_null())


def test_unseen_and_missing_categories() -> None:
    train = pa.table({"c": ["a", "b", "a", None], "x": [1.0, 2.0, None, 4.0]})
    test = pa.table({"c": ["b", "z", None, "a"], "x": [None, 0.0, 1.0, 2.0]})
    tree = Preprocessor("tree").fit(train).transform(test)
    assert np.array_equal(tree.values[:, 0], [1, np.nan, np.nan, 0], equal_nan=True)
    nn = Preprocessor("nn").fit(train).transform(test)
    assert nn.names == ("c=a", "c=b", "x", "x__missing")
    assert nn.values[:, :2].tolist() == [[0, 1], [0, 0], [0, 0], [1, 0]]
    assert nn.values[:, 3].tolist() == [1, 0, 0, 0]
    assert nn.values[0, 2] == pytest.approx(0.0 + (2.0 - 7 / 3) / np.std([1.0, 2.0, 4.0]))


def test_column_handling_and_state_roundtrip() -> None:
    ts = [dt.datetime(2024, 1, 1, h) for h in range(4)]
    table = pa.table(
        {
            "ts": pa.array(ts, pa.timestamp("ns")),
            "day": pa.array([dt.date(2024, 1, d) for d in (1, 2, 3, 9)]),
            "flag": [True, False, True, None],
            "code": [1, 2, 1, 3],
            "const": [5, 5, 5, 5],
            "empty": pa.array([None] * 4, pa.float64()),
            "cat": pa.array(["x", "y", "x", "y"]).dictionary_encode(),
        }
    )
    pre = Preprocessor("tree", categorical={"code", "ts"}).fit(table)
    fm = pre.transform(table)
    names = ("ts__epoch", "ts__hour", "day__epoch", "day__dow", "day__day", "flag", "code", "cat")
    assert fm.names == names
    assert fm.categorical == (False,) * 5 + (True, True, True)
    assert fm.cardinalities == (2, 3, 2)
    assert fm.values[1, 0] == pytest.approx(ts[1].replace(tzinfo=dt.UTC).timestamp())
    assert fm.values[:, 4].tolist() == [1, 2, 3, 9]
    assert set(pre.dropped) == {"const", "empty", "ts__dow", "ts__day", "ts__month", "day__month"}
    state = json.loads(json.dumps(pre.state()))
    again = Preprocessor.from_state(state).transform(table)
    assert np.array_equal(again.values, fm.values, equal_nan=True) and again.names == fm.names


def test_declared_int_categorical_needs_few_values() -> None:
    table = pa.table({"few": [i % 10 for i in range(22)], "many": [i % 11 for i in range(22)]})
    fm = Preprocessor("tree", categorical={"few", "many"}).fit_transform(table)
    assert fm.categorical == (True, False) and fm.cardinalities == (10,)


def test_high_cardinality_nn_uses_scaled_code() -> None:
    table = pa.table({"c": [f"v{i:02d}" for i in range(40)] * 2})
    fm = Preprocessor("nn").fit_transform(table)
    assert fm.names == ("c",) and fm.values.min() == pytest.approx(1 / 40)
    assert fm.values.max() == 1.0


def test_transform_requires_fit_and_columns() -> None:
    with pytest.raises(RuntimeError):
        Preprocessor("tree").transform(pa.table({"a": [1]}))
    pre = Preprocessor("tree").fit(pa.table({"a": [1, 2]}))
    with pytest.raises(ValueError, match="'a'"):
        pre.transform(pa.table({"b": [1]}))
