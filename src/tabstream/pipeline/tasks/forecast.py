"""Forecasting tasks: a supervised table of (cutoff -> value ``horizon`` steps later) per series.

``prepare_forecasting`` turns raw rows ``(id, timestamp, label, ...)`` into one training row per
(series, cutoff) where the cutoff's value and the target are observed; features come from
``forecast_features`` (data at or before the cutoff only; other columns are not used). The
result is a plain regression problem, so the same families, HPO, ensembles and bundles apply.

- Frequency: detected per series (``forecast_grid``); gaps are allowed (missing cells).
- ``lookback``: lags, windows and the history mean see at most ``lookback`` steps (all history
  when null).
- Splits (``splits.time_splits``): time-ordered, with a gap of ``horizon`` steps so that no
  training target lies after a validation cutoff.
- ``mase`` scale: the in-sample MAE of the seasonal-naive forecast (period = the first season,
  e.g. 24 steps for hourly data; 1 step when no season applies) over all the run's series.
- Prediction (``forecast_inputs``): from a history table, one row per id at its last timestamp,
  forecasting the value ``horizon`` steps after it.
- Short series (``forecast_short``): a series without a value observed ``horizon`` steps after
  another (fewer than 2 rows, or ``horizon + 1`` steps) is left out of training, and counted in
  the job's notes; the job fails only when no series is usable. Fallback: at prediction time a
  series left out of training, or not seen in it, is predicted by its last observed value in
  the history given (the median of the training labels when it has none), not by the model.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tabstream.pipeline.tasks.forecast_features import features_at
from tabstream.pipeline.tasks.forecast_grid import Grid, build_grid, detect_step, grid_cells
from tabstream.pipeline.tasks.forecast_short import (
    check_usable,
    drop_single_rows,
    fallback_recipe,
    fallback_values,
)
from tabstream.pipeline.tasks.splits import time_splits
from tabstream.pipeline.tasks.timeseries_features import (
    Inputs,
    check_columns,
    group_rows,
    plain_type,
    timestamps_ns,
)
from tabstream.pipeline.types import DataError, Prepared, ProblemSpec, Split
from tabstream.schemas.tasks import ForecastingTask

LAGS = (0, 1, 2, 3, 5, 7, 11, 23)
SHORT_WINDOW = 6
MAX_SEASON = 1000
DAY_NS, WEEK_NS = 86_400 * 10**9, 7 * 86_400 * 10**9


def seasons(step: int) -> list[int]:
    """Season lengths in steps: a day and a week for sub-daily steps, a week for daily ones."""
    if step < DAY_NS and DAY_NS % step == 0:
        candidates = [DAY_NS // step, WEEK_NS // step]
    elif step == DAY_NS:
        candidates = [7]
    else:
        candidates = []
    return [int(s) for s in candidates if 2 <= s <= MAX_SEASON]


def make_recipe(task: ForecastingTask, step: int, ts_type: pa.DataType) -> dict[str, Any]:
    """The JSON-safe feature recipe of ``task`` at ``step`` ns (stored in the bundle)."""
    h, lb = task.horizon, task.lookback
    fits = (lambda k: True) if lb is None else (lambda k: k < lb)
    lags = [k for k in LAGS if fits(k)]
    season_lags = []
    for s in seasons(step):
        j0 = math.ceil(h / s)
        season_lags += [[s, j, j * s - h] for j in (j0, j0 + 1) if fits(j * s - h)]
    season_lags = [lag for lag in season_lags if lag[2] not in lags]  # no duplicate columns
    windows = sorted({min(w, lb or w) for w in (SHORT_WINDOW, *seasons(step))} - {0, 1})
    reach = [*lags, *(k for *_, k in season_lags), *(w - 1 for w in windows)]
    return {
        "kind": "forecasting",
        "id_column": task.id_column,
        "timestamp_column": task.timestamp_column,
        "label_column": task.label_column,
        "horizon": h,
        "lookback": lb,
        "step_ns": step,
        "timestamp_type": str(ts_type),
        "lags": lags,
        "season_lags": season_lags,
        "windows": windows,
        "pad": max(reach, default=0) + 1,
    }


def prepare_forecasting(table: pa.Table, task: ForecastingTask) -> Prepared:
    """Validate the series and build the supervised forecasting table (see module docstring)."""
    table, left_out = drop_single_rows(table, task)
    grid, groups, recipe, y_sorted = _grid(table, task, step=None)
    codes, pos = _pairs(grid, task.horizon)
    check_usable(grid, groups, task, codes)
    recipe |= fallback_recipe(left_out, groups, codes, y_sorted)
    h = task.horizon
    cutoff = grid.t0[codes] + pos * grid.step
    order = np.lexsort((codes, cutoff))
    codes, pos, cutoff = codes[order], pos[order], cutoff[order]
    ts_type = plain_type(table.column(task.timestamp_column))
    features = features_at(recipe, grid, codes, pos, groups.ids, ts_type)
    y = grid.values[grid.base[codes] + pos + h]
    target = cutoff + h * grid.step

    def split(n_splits: int | None, random_state: int) -> list[Split]:
        return time_splits(cutoff, target, n_splits)

    n_missing = int(np.count_nonzero(~np.isfinite(y_sorted)))
    return Prepared(
        features,
        y,
        ProblemSpec("regression", task.label_column),
        n_missing,
        len(y),
        recipe=recipe,
        split=split,
        metric_kind="forecasting",
        mase_scale=_mase_scale(grid, recipe),
    )


def forecast_inputs(recipe: dict[str, Any], table: pa.Table) -> Inputs:
    """Features at each id's last timestamp of a history table, and keys (id, cutoff, target);
    ``fallback`` holds the predictions of the series the model did not train on."""
    task = _task(recipe)
    grid, groups, _, _ = _grid(table, task, step=int(recipe["step_ns"]), recipe=recipe)
    inputs = _inputs(recipe, table, task, grid, groups, np.arange(groups.n_ids), grid.lengths - 1)
    return replace(inputs, fallback=fallback_values(recipe, grid, groups))


def backtest_inputs(recipe: dict[str, Any], table: pa.Table) -> Inputs:
    """Features and keys at *every* observed cutoff of ``table`` (rolling-origin evaluation).

    Each row sees only the data up to its cutoff, exactly as ``forecast_inputs`` on the history
    truncated there would; rows are ordered by (id, cutoff).
    """
    task = _task(recipe)
    grid, groups, _, _ = _grid(table, task, step=int(recipe["step_ns"]), recipe=recipe)
    codes, pos = grid_cells(grid)
    keep = np.isfinite(grid.values[grid.base[codes] + pos])
    return _inputs(recipe, table, task, grid, groups, codes[keep], pos[keep])


def _task(recipe: dict[str, Any]) -> ForecastingTask:
    return ForecastingTask(
        label_column=recipe["label_column"],
        id_column=recipe["id_column"],
        timestamp_column=recipe["timestamp_column"],
        horizon=recipe["horizon"],
        lookback=recipe["lookback"],
    )


def _inputs(
    recipe: dict[str, Any],
    table: pa.Table,
    task: ForecastingTask,
    grid: Grid,
    groups: Any,
    codes: np.ndarray,
    pos: np.ndarray,
) -> Inputs:
    ts_type = plain_type(table.column(task.timestamp_column))
    features = features_at(recipe, grid, codes, pos, groups.ids, ts_type)
    cutoff = grid.t0[codes] + pos * grid.step
    target = cutoff + task.horizon * grid.step
    tz = ts_type.tz if pa.types.is_timestamp(ts_type) else None
    as_ts = pa.timestamp("ns", tz=tz)
    keys = pa.table(
        {
            task.id_column: groups.ids.take(pa.array(codes)),
            "cutoff": pa.array(cutoff, pa.int64()).cast(as_ts),
            task.timestamp_column: pa.array(target, pa.int64()).cast(as_ts),
        }
    )
    return Inputs(features, keys)


def _grid(
    table: pa.Table, task: ForecastingTask, step: int | None, recipe: dict[str, Any] | None = None
) -> tuple[Grid, Any, dict[str, Any], np.ndarray]:
    roles = {"id": task.id_column, "timestamp": task.timestamp_column, "label": task.label_column}
    check_columns(table, roles)
    times = timestamps_ns(table, task.timestamp_column)
    y = _label(table, task.label_column)
    groups = group_rows(table, task.id_column, times)
    if step is None:
        step = detect_step(groups, task.id_column, task.timestamp_column)
    if recipe is None:
        recipe = make_recipe(task, step, plain_type(table.column(task.timestamp_column)))
    y_sorted = y[groups.order]
    grid = build_grid(groups, y_sorted, step, recipe["pad"], task.id_column, task.timestamp_column)
    return grid, groups, recipe, y_sorted


def _label(table: pa.Table, label: str) -> np.ndarray:
    col = table.column(label)
    typ = plain_type(col)
    if not (pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ)):
        raise DataError(f"forecasting needs a numeric label; column {label!r} is {typ}")
    values = pc.fill_null(col.cast(typ).cast(pa.float64()), np.nan)
    return np.asarray(values.to_numpy(), dtype=np.float64)


def _pairs(grid: Grid, h: int) -> tuple[np.ndarray, np.ndarray]:
    """(series code, position) of the observed cutoffs whose value ``h`` steps later is observed."""
    codes, pos = grid_cells(grid)
    cells = grid.base[codes] + pos
    keep = pos + h < grid.lengths[codes]
    keep[keep] = np.isfinite(grid.values[cells[keep]]) & np.isfinite(grid.values[cells[keep] + h])
    return codes[keep], pos[keep]


def _mase_scale(grid: Grid, recipe: dict[str, Any]) -> float:
    found = seasons(grid.step)
    m = found[0] if found else 1
    codes, pos = grid_cells(grid)
    cells = (grid.base[codes] + pos)[pos >= m]
    diffs = np.abs(grid.values[cells] - grid.values[cells - m])
    diffs = diffs[np.isfinite(diffs)]
    scale = float(diffs.mean()) if diffs.size else 0.0
    return scale if scale > 0 else 1.0
