"""Regular per-series time grids for forecasting: frequency detection, checks and layout.

Each series (id) is laid on its own regular grid of ``step`` ns from its first timestamp; grid
points without a row (gaps) or with a missing label hold NaN. In the flat ``values`` array every
series is preceded by ``pad`` NaN cells, so lags and windows never reach into the previous
series. Frequency: the median difference between consecutive timestamps of each series; all
series must agree, and every timestamp must sit on its series' grid (else a clear error).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tabstream.pipeline.tasks.timeseries_features import Groups, id_repr
from tabstream.pipeline.types import DataError

MAX_GRID_PER_ROW = 50  # a grid more than 50x the rows is too sparse to forecast on


@dataclass(frozen=True)
class Grid:
    """Series on a regular grid: flat values, where each series starts, lengths, first times."""

    values: np.ndarray  # float64, NaN = missing
    base: np.ndarray  # flat index of each series' first grid point
    lengths: np.ndarray  # grid points per series
    t0: np.ndarray  # first timestamp (ns) per series
    step: int  # ns between grid points


def detect_step(groups: Groups, id_column: str, ts_column: str) -> int:
    """The common median step (ns) of all series; ``DataError`` naming the series otherwise."""
    single = np.flatnonzero(groups.counts < 2)
    if single.size:
        raise DataError(
            f"series {id_repr(groups, single[0])} of id column {id_column!r} has "
            f"{groups.counts[single[0]]} row(s); forecasting needs at least 2 rows per series"
        )
    _check_duplicates(groups, id_column, ts_column)
    steps = _median_steps(groups)
    odd = np.flatnonzero(steps != steps[0])
    if odd.size:
        raise DataError(
            f"series of id column {id_column!r} have different frequencies in column "
            f"{ts_column!r}: {id_repr(groups, 0)} every {steps[0] / 1e9:g}s, "
            f"{id_repr(groups, odd[0])} every {steps[odd[0]] / 1e9:g}s"
        )
    return int(steps[0])


def build_grid(
    groups: Groups, y_sorted: np.ndarray, step: int, pad: int, id_column: str, ts_column: str
) -> Grid:
    """Lay the sorted labels on regular grids of ``step`` ns; irregular timestamps are errors."""
    _check_duplicates(groups, id_column, ts_column)
    t0 = groups.times[groups.starts]
    offset = groups.times - t0[groups.codes]
    off_grid = np.flatnonzero(offset % step)
    if off_grid.size:
        code = groups.codes[off_grid[0]]
        raise DataError(
            f"series {id_repr(groups, code)} of id column {id_column!r} has irregular timestamps "
            f"in column {ts_column!r}: not on a regular grid of {step / 1e9:g}s steps; "
            "resample it to a regular frequency"
        )
    pos = offset // step
    lengths = pos[np.r_[groups.starts[1:], len(pos)] - 1] + 1
    if lengths.sum() > MAX_GRID_PER_ROW * len(pos) + 1000:
        raise DataError(
            f"timestamps in column {ts_column!r} are too sparse for a {step / 1e9:g}s frequency "
            f"({int(lengths.sum())} grid points for {len(pos)} rows)"
        )
    base = np.cumsum(lengths + pad) - lengths
    values = np.full(int(base[-1] + lengths[-1]) if len(base) else 0, np.nan)
    values[base[groups.codes] + pos] = y_sorted
    return Grid(values, base, lengths, t0, step)


def grid_cells(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """(series code, local position) of every grid point, series by series."""
    n = len(grid.lengths)
    codes = np.repeat(np.arange(n), grid.lengths)
    starts = np.repeat(np.cumsum(grid.lengths) - grid.lengths, grid.lengths)
    return codes, np.arange(int(grid.lengths.sum())) - starts


def _check_duplicates(groups: Groups, id_column: str, ts_column: str) -> None:
    same = groups.codes[1:] == groups.codes[:-1]
    dup = np.flatnonzero(same & (np.diff(groups.times) == 0))
    if dup.size:
        raise DataError(
            f"series {id_repr(groups, groups.codes[dup[0]])} of id column {id_column!r} has "
            f"duplicate timestamps in column {ts_column!r}"
        )


def _median_steps(groups: Groups) -> np.ndarray:
    same = groups.codes[1:] == groups.codes[:-1]
    diffs, owner = np.diff(groups.times)[same], groups.codes[1:][same]
    order = np.lexsort((diffs, owner))
    diffs, owner = diffs[order], owner[order]
    counts = np.bincount(owner, minlength=groups.n_ids)
    first = np.cumsum(counts) - counts
    return np.asarray(diffs[first + (counts - 1) // 2], dtype=np.int64)
