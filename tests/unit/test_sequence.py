"""Sequence tasks: per-id aggregation, one label per id, grouped splits, errors, run + predict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tabstream.pipeline.finish.bundle import load_bundle
from tabstream.pipeline.tasks.prepare import prepare
from tabstream.pipeline.types import DataError
from tabstream.schemas.tasks import (
    SequenceBinclassTask,
    SequenceMulticlassTask,
    SequenceRegressionTask,
)
from tests.unit.pipeline_support import of_type, run_collect
from tests.unit.ts_support import bikeshare_days, stored, ts_request

HOUR = 3600 * 10**9
DAYS_TASK = {"task_kind": "sequence_binclass", "label_column": "workingday",
             "id_column": "day_id", "timestamp_column": "ts"}  # fmt: skip


def tiny() -> pa.Table:
    """Two ids, rows out of order: id b has x = 1, 3, 5 at hours 0, 1, 2 and id a one row."""
    ts = pa.array(np.array([2, 0, 5, 1], dtype=np.int64) * HOUR).cast(pa.timestamp("ns"))
    return pa.table({"id": ["b", "b", "a", "b"], "ts": ts, "x": [5.0, 1.0, 7.0, 3.0],
                     "c": ["u", "v", "u", None], "y": [1.5, 1.5, 2.0, None]})  # fmt: skip


def seq(cls: type = SequenceRegressionTask, **kw: str) -> object:
    """A sequence task on ``tiny()``."""
    return cls(**({"label_column": "y", "id_column": "id", "timestamp_column": "ts"} | kw))


def test_aggregates_per_id_in_time_order() -> None:
    p = prepare(tiny(), seq())  # type: ignore[arg-type]
    assert p.spec.kind == "regression" and list(p.y) == [2.0, 1.5]  # ids ascending: a, b
    a, b = p.features.to_pylist()
    assert a["n_events"] == 1 and b["n_events"] == 3
    assert b["x__last"] == 5.0 and b["x__mean"] == 3.0 and b["x__min"] == 1.0
    assert b["x__trend"] == pytest.approx(2.0 * 24)  # +2 per hour, per day
    assert b["span_seconds"] == 7200 and b["seconds_since_last"] == 3 * 3600
    assert b["c__last"] == "u" and b["c==v__frac"] == pytest.approx(1 / 3)  # nulls skipped
    assert np.isnan(a["x__trend"]) and a["seconds_since_last"] == 0


def test_label_must_be_constant_within_an_id() -> None:
    table = tiny().set_column(4, "y", pa.array([1.5, 9.0, 2.0, None]))
    with pytest.raises(DataError, match="label column 'y' varies within id 'b' of id column 'id'"):
        prepare(table, seq())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"id_column": "nope"}, "id 'nope'"),
        ({"timestamp_column": "when"}, "timestamp 'when'"),
        ({"timestamp_column": "x"}, "timestamp column 'x' must be a timestamp or date"),
    ],
)
def test_clear_errors(change: dict[str, str], match: str) -> None:
    with pytest.raises(DataError, match=match):
        prepare(tiny(), seq(**change))  # type: ignore[arg-type]


def test_grouped_splits_keep_each_id_in_one_fold() -> None:
    raw = bikeshare_days()
    p = prepare(raw, SequenceBinclassTask.model_validate(DAYS_TASK))
    assert p.n_rows == 365 and p.spec.classes == (0, 1) and p.split is not None
    day_of_row = np.asarray(raw.column("day_id").to_pylist())
    ids = np.unique(day_of_row)  # prepared rows are the ids, ascending
    folds = p.split(4, 0)
    fold_of_id = {}
    for f, (tr, va) in enumerate(folds):
        assert not set(ids[tr]) & set(ids[va])
        for i in ids[va]:
            assert i not in fold_of_id
            fold_of_id[i] = f
    assert len(fold_of_id) == 365
    # every raw row of an id lands in its id's single validation fold
    row_folds = np.asarray([fold_of_id[d] for d in day_of_row])
    for d in ids[:50]:
        assert len(set(row_folds[day_of_row == d])) == 1
    for _, va in folds:  # stratified: both classes in every fold
        assert set(p.y[va]) == {0, 1}
    ((tr, va),) = p.split(None, 0)
    assert not set(tr) & set(va) and len(va) == pytest.approx(73, abs=3)


def test_multiclass_needs_three_classes() -> None:
    table = tiny().set_column(4, "y", pa.array(["p", "p", "q", None]))
    with pytest.raises(DataError, match="at least 3 classes"):
        prepare(table, seq(SequenceMulticlassTask))  # type: ignore[arg-type]


def test_run_and_predict_one_label_per_id(tmp_path: Path) -> None:
    raw = bikeshare_days()
    store, ref = stored(tmp_path, raw)
    result, events = run_collect(store, ref, ts_request(DAYS_TASK, n_splits=3))
    assert result.n_rows == 365 and result.leaderboard[0].metrics["auc"] > 0.8
    (registered,) = of_type(events, "ModelRegistered")
    assert registered.task.task_kind == "sequence_binclass" and registered.classes == [0, 1]
    model = load_bundle(store, str(registered.model_id), registered.sha256)
    rows = raw.slice(24 * 40, 24 * 7).drop_columns(["workingday"])  # a week, no label
    out = model.predict_table(rows)
    assert out.num_rows == len(set(rows.column("day_id").to_pylist()))
    assert set(out.column("prediction").to_pylist()) <= {0, 1}
    assert model.predict(rows).shape == (out.num_rows,)
