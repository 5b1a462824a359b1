"""Forecasting features at cutoff cells of a ``Grid``, strictly from data at or before each cutoff.

For a cutoff at grid cell ``i`` (the last observed time) and horizon ``h`` steps:

- ``lag_k``: the value ``k`` steps before the cutoff (``lag_0`` = the cutoff's own value);
- ``season{s}_x{j}``: the value ``j`` seasons of ``s`` steps before the *target* time, i.e.
  ``k = j*s - h`` steps before the cutoff (the two most recent such values: same hour last
  day / last week for hourly data);
- ``win{w}_mean|std|min|max``: statistics of the ``w`` steps ending at the cutoff (missing
  cells skipped);
- ``hist_mean`` / ``hist_count``: mean and count of all history (or the ``lookback`` steps);
- calendar of the target time: ``hour``, ``dow``, ``day``, ``month`` (known in advance);
- ``series_id``: the id as a string (a categorical feature).

Nothing reads a cell after ``i``: lags and windows index ``<= i`` and every series is preceded
by NaN padding, so no window reaches into another series.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tabstream.pipeline.tasks.forecast_grid import Grid

MAX_MINMAX_WINDOW = 400


def features_at(
    recipe: dict[str, Any],
    grid: Grid,
    codes: np.ndarray,
    pos: np.ndarray,
    ids: pa.Array,
    tz_type: pa.DataType,
) -> pa.Table:
    """The feature table for cutoffs at (series ``codes``, local positions ``pos``)."""
    cells = grid.base[codes] + pos
    v = grid.values
    cols: dict[str, Any] = {f"lag_{k}": _lag(v, cells, k) for k in recipe["lags"]}
    for s, j, k in recipe["season_lags"]:
        cols[f"season{s}_x{j}"] = _lag(v, cells, k)
    csum, ccount, csq = _cumsums(v)
    for w in recipe["windows"]:
        mean, std, _ = _window(csum, ccount, csq, cells - w + 1, cells)
        cols[f"win{w}_mean"], cols[f"win{w}_std"] = mean, std
        if w <= MAX_MINMAX_WINDOW:
            cols[f"win{w}_min"], cols[f"win{w}_max"] = _minmax(v, cells, w)
    lookback = recipe["lookback"]
    first = (
        grid.base[codes] if lookback is None else np.maximum(grid.base[codes], cells - lookback + 1)
    )
    cols["hist_mean"], _, cols["hist_count"] = _window(csum, ccount, csq, first, cells)
    target = grid.t0[codes] + (pos + recipe["horizon"]) * grid.step
    cols |= calendar(target, tz_type)
    cols["series_id"] = pc.cast(ids.take(pa.array(codes)), pa.string())
    return pa.table(cols)


def calendar(ns: np.ndarray, like: pa.DataType) -> dict[str, pa.Array]:
    """Hour, day of week, day of month and month of int64-ns times (in ``like``'s zone)."""
    tz = like.tz if pa.types.is_timestamp(like) else None
    ts = pa.array(ns, pa.int64()).cast(pa.timestamp("ns", tz=tz))
    return {
        "hour": pc.hour(ts),
        "dow": pc.day_of_week(ts),
        "day": pc.day(ts),
        "month": pc.month(ts),
    }


def _lag(v: np.ndarray, cells: np.ndarray, k: int) -> np.ndarray:
    return np.asarray(v[cells - k], dtype=np.float64)


def _cumsums(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ok = np.isfinite(v)
    x = np.where(ok, v, 0.0)
    return (
        np.r_[0.0, np.cumsum(x)],
        np.r_[0, np.cumsum(ok)],
        np.r_[0.0, np.cumsum(x * x)],
    )


def _window(
    csum: np.ndarray, ccount: np.ndarray, csq: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, std and count of the observed cells in [lo, hi] (inclusive)."""
    n = (ccount[hi + 1] - ccount[lo]).astype(np.float64)
    s = csum[hi + 1] - csum[lo]
    sq = csq[hi + 1] - csq[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, s / n, np.nan)
        var = np.where(n > 0, sq / n - mean * mean, np.nan)
    return mean, np.sqrt(np.maximum(var, 0.0)), n


def _minmax(v: np.ndarray, cells: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    windows = np.lib.stride_tricks.sliding_window_view(v, w)[cells - w + 1]
    ok = np.isfinite(windows)
    lo = np.where(ok, windows, np.inf).min(axis=1)
    hi = np.where(ok, windows, -np.inf).max(axis=1)
    return np.where(np.isfinite(lo), lo, np.nan), np.where(np.isfinite(hi), hi, np.nan)
