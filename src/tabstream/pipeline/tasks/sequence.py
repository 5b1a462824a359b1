"""Sequence tasks: one row per id, aggregated over the id's time-ordered rows.

- Label: one per id. The label must be constant within an id (missing cells are ignored); a
  label that varies is a ``DataError`` naming the id and column. Ids whose label is missing in
  every row are dropped (reported as dropped rows).
- Features per id (``aggregate``): ``n_events``; ``span_seconds``, ``mean_gap_seconds``,
  ``seconds_since_first`` and ``seconds_since_last`` (relative to the latest timestamp of the
  whole table given: the training table at fit time, the prediction table at predict time);
  per numeric column: last non-missing value, mean, min, max, std (population) and ``trend``
  (least-squares slope per day against time); per categorical (string, bool, dictionary)
  column: the last value and the frequency of each of its ``TOP_CATEGORIES`` most common
  values (learned on the training table, stored in the recipe). Other types are ignored.
- Splits: grouped by id (``splits.group_splits``), stratified for classification; since the
  table has one row per id, no sequence is ever split across folds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tabstream.pipeline.tasks.labels import encode_target
from tabstream.pipeline.tasks.splits import group_splits
from tabstream.pipeline.tasks.timeseries_features import (
    Groups,
    Inputs,
    check_columns,
    group_rows,
    id_repr,
    plain_type,
    timestamps_ns,
)
from tabstream.pipeline.types import DataError, Prepared, Split
from tabstream.schemas.tasks import (
    SequenceBinclassTask,
    SequenceMulticlassTask,
    SequenceRegressionTask,
)

SequenceTask = SequenceRegressionTask | SequenceBinclassTask | SequenceMulticlassTask
TOP_CATEGORIES = 10
DAY_S = 86_400.0


def prepare_sequence(table: pa.Table, task: SequenceTask) -> Prepared:
    """Check the columns, take one label per id and aggregate the rows per id."""
    roles = {"id": task.id_column, "timestamp": task.timestamp_column, "label": task.label_column}
    check_columns(table, roles)
    groups = group_rows(table, task.id_column, timestamps_ns(table, task.timestamp_column))
    labels = _labels(table, groups, task)
    keep = np.flatnonzero(pc.is_valid(labels).to_numpy(zero_copy_only=False))
    if keep.size == 0:
        raise DataError(f"label column {task.label_column!r} is missing in every row")
    recipe = make_recipe(table, task)
    features = aggregate(recipe, table, groups).take(pa.array(keep))
    kind = task.task_kind.removeprefix("sequence_")
    kept = pa.chunked_array([labels.take(pa.array(keep))])
    spec, y = encode_target(kept, kind, task.label_column)
    dropped = int(groups.counts.sum() - groups.counts[keep].sum())

    def split(n_splits: int | None, random_state: int) -> list[Split]:
        return group_splits(y, np.arange(len(y)), spec, n_splits, random_state)

    return Prepared(features, y, spec, dropped, len(y), recipe=recipe, split=split)


def sequence_inputs(recipe: dict[str, Any], table: pa.Table) -> Inputs:
    """Aggregated features of the ids of ``table`` (ascending), the label not needed."""
    check_columns(table, {"id": recipe["id_column"], "timestamp": recipe["timestamp_column"]})
    groups = group_rows(
        table, recipe["id_column"], timestamps_ns(table, recipe["timestamp_column"])
    )
    keys = pa.table({recipe["id_column"]: groups.ids})
    return Inputs(aggregate(recipe, table, groups), keys)


def make_recipe(table: pa.Table, task: SequenceTask) -> dict[str, Any]:
    """Which columns are aggregated how, and the top categories of each categorical column."""
    skip = {task.id_column, task.timestamp_column, task.label_column}
    numeric, categorical = [], {}
    for name in table.column_names:
        typ = plain_type(table.column(name))
        if name in skip:
            continue
        if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ):
            numeric.append(name)
        elif pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_boolean(typ):
            counts = pc.value_counts(_strings(table.column(name))).to_pylist()
            counts = sorted((c for c in counts if c["values"] is not None), key=_by_count)
            categorical[name] = [c["values"] for c in counts[:TOP_CATEGORIES]]
    return {
        "kind": "sequence",
        "id_column": task.id_column,
        "timestamp_column": task.timestamp_column,
        "label_column": task.label_column,
        "numeric": numeric,
        "categorical": categorical,
    }


def aggregate(recipe: dict[str, Any], table: pa.Table, groups: Groups) -> pa.Table:
    """One row per id (ascending) of the recipe's aggregated features."""
    cols: dict[str, Any] = _time_features(groups)
    sorted_table = table.take(pa.array(groups.order))
    for name in recipe["numeric"]:
        cols |= _numeric(name, sorted_table.column(name), groups)
    for name, top in recipe["categorical"].items():
        if name not in table.column_names:
            raise DataError(f"the input lacks the sequence feature column {name!r}")
        cols |= _categorical(name, _strings(sorted_table.column(name)), top, groups)
    return pa.table(cols)


def _by_count(c: dict[str, Any]) -> tuple[int, str]:
    return -int(c["counts"]), str(c["values"])


def _strings(col: pa.ChunkedArray) -> pa.ChunkedArray:
    return col.cast(plain_type(col)).cast(pa.string())


def _labels(table: pa.Table, groups: Groups, task: SequenceTask) -> pa.Array:
    label = table.column(task.label_column)
    label = label.cast(plain_type(label)).take(pa.array(groups.order))
    pairs = pa.table({"g": groups.codes, "y": label})
    agg = pairs.group_by("g", use_threads=False).aggregate(
        [("y", "count_distinct"), ("y", "first")]
    )
    agg = agg.sort_by("g")
    distinct = agg.column("y_count_distinct").to_numpy()
    bad = np.flatnonzero(distinct > 1)
    if bad.size:
        code = int(agg.column("g")[int(bad[0])].as_py())
        values = pc.unique(pairs.filter(pc.equal(pairs.column("g"), code)).column("y"))
        raise DataError(
            f"label column {task.label_column!r} varies within id {id_repr(groups, code)} of id "
            f"column {task.id_column!r} ({values.to_pylist()[:5]}); a sequence task needs one "
            "label per id"
        )
    return agg.column("y_first").combine_chunks()


def _time_features(groups: Groups) -> dict[str, np.ndarray]:
    t, ends = groups.times, groups.starts + groups.counts - 1
    first, last, ref = t[groups.starts], t[ends], t.max()
    span = (last - first) / 1e9
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = np.where(groups.counts > 1, span / (groups.counts - 1), np.nan)
    return {
        "n_events": groups.counts.astype(np.int64),
        "span_seconds": span,
        "mean_gap_seconds": gap,
        "seconds_since_first": (ref - first) / 1e9,
        "seconds_since_last": (ref - last) / 1e9,
    }


def _numeric(name: str, col: pa.ChunkedArray, groups: Groups) -> dict[str, np.ndarray]:
    x = np.asarray(pc.fill_null(col.cast(plain_type(col)).cast(pa.float64()), np.nan), np.float64)
    ok, g, n_ids = np.isfinite(x), groups.codes, groups.n_ids
    x0 = np.where(ok, x, 0.0)
    n = np.bincount(g, ok, n_ids)
    t = (groups.times - groups.times[groups.starts][g]) / 1e9 / DAY_S * ok
    sums = {
        k: np.bincount(g, w, n_ids)
        for k, w in {"x": x0, "xx": x0 * x0, "t": t, "tt": t * t, "tx": t * x0}.items()
    }
    last_idx = np.maximum.reduceat(np.where(ok, np.arange(len(x)), -1), groups.starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums["x"] / n
        var = sums["xx"] / n - mean * mean
        cov = sums["tx"] - sums["t"] * sums["x"] / n
        tvar = sums["tt"] - sums["t"] ** 2 / n
        trend = np.where((n >= 2) & (tvar > 1e-12), cov / tvar, np.nan)
    return {
        f"{name}__last": np.where(last_idx >= 0, x[np.maximum(last_idx, 0)], np.nan),
        f"{name}__mean": mean,
        f"{name}__min": np.fmin.reduceat(np.where(ok, x, np.nan), groups.starts),
        f"{name}__max": np.fmax.reduceat(np.where(ok, x, np.nan), groups.starts),
        f"{name}__std": np.sqrt(np.maximum(var, 0.0)),
        f"{name}__trend": trend,
    }


def _categorical(name: str, col: pa.ChunkedArray, top: list[str], groups: Groups) -> dict[str, Any]:
    valid = pc.is_valid(col).to_numpy(zero_copy_only=False)
    last_idx = np.maximum.reduceat(np.where(valid, np.arange(len(col)), -1), groups.starts)
    last = col.take(pa.array(np.maximum(last_idx, 0)))
    out: dict[str, Any] = {f"{name}__last": pc.if_else(pa.array(last_idx >= 0), last, None)}
    for value in top:
        hit = pc.fill_null(pc.equal(col, value), False).to_numpy(zero_copy_only=False)
        out[f"{name}=={value}__frac"] = np.bincount(groups.codes, hit, groups.n_ids) / groups.counts
    return out
