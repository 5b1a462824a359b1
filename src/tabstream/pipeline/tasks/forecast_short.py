"""Forecasting with short series: which series are left out of training, the job's note about
them, and the fallback that predicts them.

A series is *usable* when it has a value observed ``horizon`` steps after another observed value
(so at least one training row: at least 2 rows spanning ``horizon + 1`` grid steps). Series with
fewer than 2 rows are removed before the frequency is detected (no step can be read from them);
series without such a pair give no training rows. Both are *left out*: ``forecast_notes`` counts
them for the job's notes (naming at most ``MAX_SHOWN``), and preparing fails with a
``DataError`` (the job with ``invalid_input``) only when no series is usable.

Fallback at prediction time (``forecast.forecast_inputs`` sets ``Inputs.fallback``): a series
whose id is not among the trained ones (``recipe["series_ids"]``: left out, or never seen in
training) is predicted by its last observed value in the history given to predict, and by the
median of the training labels (``recipe["fallback_value"]``) when it has no observed value there.
Bundles whose recipe lacks ``series_ids`` (made before this rule) predict every series with the
model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tabstream.pipeline.tasks.forecast_grid import Grid, grid_cells
from tabstream.pipeline.tasks.timeseries_features import (
    Groups,
    check_columns,
    group_rows,
    id_repr,
    timestamps_ns,
)
from tabstream.pipeline.types import DataError
from tabstream.schemas.tasks import ForecastingTask

MAX_SHOWN = 5
"""Left-out series named in the job's note; the rest are counted."""


@dataclass
class LeftOut:
    """The series left out of training: how many of ``n_series``, and the first ids shown."""

    n_series: int
    count: int = 0
    shown: list[str] = field(default_factory=list)

    def add(self, groups: Groups, codes: np.ndarray) -> None:
        """Record the series ``codes`` of ``groups`` as left out."""
        self.count += len(codes)
        room = max(0, MAX_SHOWN - len(self.shown))
        self.shown += [id_repr(groups, c) for c in codes[:room]]

    def as_recipe(self) -> dict[str, Any]:
        """The JSON-safe record kept in the recipe (and the bundle)."""
        return {"n_series": self.n_series, "left_out": self.count, "shown": self.shown}


def drop_single_rows(table: pa.Table, task: ForecastingTask) -> tuple[pa.Table, LeftOut]:
    """``table`` without the series of fewer than 2 rows, which are recorded as left out."""
    roles = {"id": task.id_column, "timestamp": task.timestamp_column, "label": task.label_column}
    check_columns(table, roles)
    groups = group_rows(table, task.id_column, timestamps_ns(table, task.timestamp_column))
    left = LeftOut(groups.n_ids)
    single = np.flatnonzero(groups.counts < 2)
    if single.size == 0:
        return table, left
    left.add(groups, single)
    if single.size == groups.n_ids:
        raise _no_usable(
            f"all {groups.n_ids} series of id column {task.id_column!r} have fewer than 2 rows "
            f"({_needs(task.horizon)})"
        )
    ids = table.column(task.id_column)
    if pa.types.is_dictionary(ids.type):
        ids = ids.cast(ids.type.value_type)
    drop = pc.is_in(ids, value_set=groups.ids.take(pa.array(single)))
    return table.filter(pc.invert(drop)), left


def check_usable(grid: Grid, groups: Groups, task: ForecastingTask, codes: np.ndarray) -> None:
    """``DataError`` when no series has a training row (``codes``: the series of each row)."""
    if codes.size:
        return
    h, longest = task.horizon, int(np.argmax(grid.lengths))
    if grid.lengths[longest] <= h:
        raise _no_usable(
            f"horizon {h} steps (of {grid.step / 1e9:g}s) is longer than the data: the longest "
            f"series, {id_repr(groups, longest)}, spans {grid.lengths[longest]} steps"
        )
    raise _no_usable(
        f"none of the {groups.n_ids} series of id column {task.id_column!r} has a value observed "
        f"{h} step(s) after another ({_needs(h)})"
    )


def fallback_recipe(
    left: LeftOut, groups: Groups, codes: np.ndarray, y_sorted: np.ndarray
) -> dict[str, Any]:
    """Recipe entries for the fallback: trained series ids, training label median, left out.

    ``codes`` are the series of the training rows; the other series of ``groups`` join
    ``left`` (they have rows but no value ``horizon`` steps after another).
    """
    trained = np.zeros(groups.n_ids, dtype=bool)
    trained[codes] = True
    left.add(groups, np.flatnonzero(~trained))
    ids = pc.cast(groups.ids.take(pa.array(np.flatnonzero(trained))), pa.string())
    return {
        "series_ids": ids.to_pylist(),
        "fallback_value": float(np.nanmedian(y_sorted)),
        "short_series": left.as_recipe(),
    }


def forecast_notes(recipe: dict[str, Any] | None) -> list[str]:
    """The job's notes about the series a forecasting run left out (none for other recipes)."""
    short = recipe.get("short_series") if recipe is not None else None
    if recipe is None or not short or not short["left_out"]:
        return []
    n, col = short["left_out"], recipe["id_column"]
    more = n - len(short["shown"])
    ids = ", ".join(f"{col}={s}" for s in short["shown"]) + (f" and {more} more" if more else "")
    return [
        f"forecasting: {n} of {short['n_series']} series too short to train on ({ids}): "
        f"{_needs(recipe['horizon'])}; they are left out of training and predicted by their "
        "last observed value"
    ]


def fallback_values(recipe: dict[str, Any], grid: Grid, groups: Groups) -> np.ndarray | None:
    """Per series of ``groups``: its fallback prediction, NaN where the model predicts it."""
    trained = recipe.get("series_ids")
    if trained is None or groups.n_ids == 0:
        return None
    ids = pc.cast(groups.ids, pa.string())
    known = pc.is_in(ids, value_set=pa.array(trained, pa.string()))
    last = last_observed(grid, float(recipe["fallback_value"]))
    return np.where(np.asarray(known.to_numpy(zero_copy_only=False)), np.nan, last)


def last_observed(grid: Grid, default: float) -> np.ndarray:
    """Each series' last observed value on ``grid``; ``default`` for a series with none."""
    codes, pos = grid_cells(grid)
    cells = grid.base[codes] + pos
    idx = np.where(np.isfinite(grid.values[cells]), cells, -1)
    last = np.maximum.reduceat(idx, np.cumsum(grid.lengths) - grid.lengths)
    return np.where(last >= 0, grid.values[np.maximum(last, 0)], default)


def _needs(h: int) -> str:
    return f"a series needs a value observed {h} step(s) after another, so {h + 1} steps or more"


def _no_usable(reason: str) -> DataError:
    return DataError(f"forecasting: no series is usable: {reason}")
