"""Forecasting: supervised table, no leakage, frequency checks, clear errors, predict inputs."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tabstream.pipeline.tasks.forecast import backtest_inputs, forecast_inputs
from tabstream.pipeline.tasks.prepare import prepare
from tabstream.pipeline.types import DataError
from tabstream.schemas.tasks import ForecastingTask
from tests.unit.ts_support import bikeshare


def task(**kw: object) -> ForecastingTask:
    """A forecasting task on bikeshare: ``bikers`` 24 hours ahead of ``store``'s series."""
    base = {"label_column": "bikers", "id_column": "store", "timestamp_column": "ts", "horizon": 24}
    return ForecastingTask.model_validate(base | kw)


def test_supervised_table_targets_horizon_steps_ahead() -> None:
    table = bikeshare(1000)
    p = prepare(table, task())
    assert p.spec.kind == "regression" and p.metric_kind == "forecasting"
    assert p.recipe is not None and p.recipe["step_ns"] == 3600 * 10**9
    assert {"lag_0", "season168_x1", "win24_mean", "hour", "dow"} <= set(p.features.column_names)
    by_time = dict(
        zip(table.column("ts").to_pylist(), table.column("bikers").to_pylist(), strict=True)
    )
    hour = np.timedelta64(1, "h")
    ts = np.asarray(table.column("ts").to_numpy())
    lag0 = p.features.column("lag_0").to_numpy()
    # each row: lag_0 is the value at some observed cutoff c and y the value at c + 24h
    cutoffs = [t for t in ts if t + 24 * hour in set(ts)]
    assert p.n_rows == len(cutoffs)
    first = cutoffs[0]
    assert lag0[0] == by_time[first.astype("datetime64[us]").item()]
    assert p.y[0] == by_time[(first + 24 * hour).astype("datetime64[us]").item()]
    assert 0 < p.mase_scale < 200


def test_features_use_only_data_up_to_the_cutoff() -> None:
    """Perturb everything after a cutoff: the features of earlier cutoffs do not change."""
    table = bikeshare(1200)
    cut = table.column("ts")[700]
    after = pc.greater(table.column("ts"), cut)
    noisy = pc.if_else(after, pc.multiply(table.column("bikers"), 1000), table.column("bikers"))
    changed = table.set_column(table.schema.get_field_index("bikers"), "bikers", noisy)
    a, b = prepare(table, task()), prepare(changed, task())
    assert a.n_rows == b.n_rows
    early = np.flatnonzero(_cutoffs(table, a.n_rows) <= np.datetime64(cut.as_py()))
    assert early.size > 600
    assert not np.allclose(a.y[early[-1] + 30 :], b.y[early[-1] + 30 :])  # later rows do change
    for name in a.features.column_names:
        if name != "series_id":
            np.testing.assert_array_equal(
                a.features.column(name).to_numpy()[early], b.features.column(name).to_numpy()[early]
            )


def _cutoffs(table: pa.Table, n: int) -> np.ndarray:
    ts = np.asarray(table.column("ts").to_numpy())
    have = set(ts)
    return np.asarray([t for t in ts if t + np.timedelta64(24, "h") in have])[:n]


def test_planted_future_signal_is_not_used() -> None:
    """iid noise series whose future is a planted spike pattern: no feature correlates with it."""
    table = bikeshare(2000)
    rng = np.random.default_rng(0)
    noise = rng.normal(size=table.num_rows)
    table = table.set_column(table.schema.get_field_index("bikers"), "bikers", pa.array(noise))
    p = prepare(table, task())
    for name in p.features.column_names:
        if name in ("series_id", "hour", "dow", "day", "month"):
            continue
        x = p.features.column(name).to_numpy(zero_copy_only=False).astype(float)
        ok = np.isfinite(x)
        corr = np.corrcoef(x[ok], p.y[ok])[0, 1]
        assert abs(corr) < 0.1, (name, corr)


def test_time_splits_are_ordered_with_a_horizon_gap() -> None:
    p = prepare(bikeshare(1500), task())
    assert p.split is not None
    cutoffs = _cutoffs(bikeshare(1500), p.n_rows)
    ((tr, va),) = p.split(None, 0)
    assert cutoffs[tr].max() + np.timedelta64(24, "h") <= cutoffs[va].min()
    folds = p.split(3, 0)
    assert len(folds) == 3
    assert all(len(folds[i][0]) < len(folds[i + 1][0]) for i in range(2))
    for tr, va in folds:
        assert cutoffs[tr].max() + np.timedelta64(24, "h") <= cutoffs[va].min()
    assert not set(folds[0][1]) & set(folds[1][1])


def test_series_split_by_weathersit_and_lookback() -> None:
    table = bikeshare(3000)
    table = table.filter(pc.not_equal(table.column("weathersit"), "heavy rain/snow"))
    p = prepare(table, task(id_column="weathersit", lookback=48))
    assert set(p.features.column("series_id").to_pylist()) == {
        "clear", "cloudy/misty", "light rain/snow"
    }  # fmt: skip
    assert "season168_x1" not in p.features.column_names  # beyond the 48-step lookback
    assert "win48_mean" in p.features.column_names


def test_predict_inputs_match_the_training_features() -> None:
    table = bikeshare(800)
    p = prepare(table, task())
    assert p.recipe is not None
    # history up to the last training cutoff of the prepared table
    last = _cutoffs(table, p.n_rows)[-1]
    history = table.filter(pc.less_equal(table.column("ts"), pa.scalar(last, pa.timestamp("ns"))))
    inputs = forecast_inputs(p.recipe, history.drop_columns(["temp", "hum"]))
    assert inputs.keys.num_rows == 1
    assert inputs.keys.column("store").to_pylist() == ["dc"]
    target = inputs.keys.column("ts")[0].as_py()
    assert np.datetime64(target) == last + np.timedelta64(24, "h")
    row = p.features.slice(p.n_rows - 1, 1).to_pylist()[0]
    got = inputs.features.to_pylist()[0]
    assert got.keys() == row.keys()
    for k, v in row.items():
        assert got[k] == pytest.approx(v, nan_ok=True), k


def test_date_columns_are_accepted() -> None:
    days = pa.array(np.arange(60, dtype=np.int32), pa.int32()).cast(pa.date32())
    table = pa.table({"d": days, "id": ["x"] * 60, "y": np.sin(np.arange(60.0))})
    p = prepare(table, ForecastingTask(label_column="y", id_column="id", timestamp_column="d",
                                       horizon=3))  # fmt: skip
    assert p.recipe is not None and p.recipe["step_ns"] == 86_400 * 10**9
    assert p.n_rows == 57


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"id_column": "nope"}, "id 'nope'"),
        ({"timestamp_column": "when"}, "timestamp 'when'"),
        ({"timestamp_column": "hr"}, "timestamp column 'hr' must be a timestamp or date"),
        ({"timestamp_column": "mnth"}, "must be a timestamp or date column, not string"),
        ({"horizon": 9000}, "horizon 9000 steps .* longer than the data"),
        ({"label_column": "weathersit", "id_column": "store"}, "numeric label"),
    ],
)
def test_clear_errors(change: dict[str, object], match: str) -> None:
    with pytest.raises(DataError, match=match):
        prepare(bikeshare(), task(**change))


def test_irregular_and_duplicate_timestamps_are_errors() -> None:
    table = bikeshare(300)
    ts = table.column("ts").cast(pa.int64()).to_numpy().copy()
    ts[100] += 17 * 60 * 10**9
    jitter = table.set_column(0, "ts", pa.array(ts).cast(pa.timestamp("ns")))
    with pytest.raises(
        DataError, match="'dc' of id column 'store' has irregular timestamps in column 'ts'"
    ):
        prepare(jitter, task())
    ts[100] = ts[99]
    dup = table.set_column(0, "ts", pa.array(ts).cast(pa.timestamp("ns")))
    with pytest.raises(DataError, match="duplicate timestamps in column 'ts'"):
        prepare(dup, task())


def test_backtest_rows_match_forecasts_from_truncated_history() -> None:
    table = bikeshare(600)
    p = prepare(table, task(lookback=100))
    assert p.recipe is not None
    bt = backtest_inputs(p.recipe, table)
    assert bt.keys.num_rows == table.num_rows  # every observed hour is a cutoff
    i = 400
    history = table.slice(0, i + 1)
    one = forecast_inputs(p.recipe, history)
    assert bt.keys.slice(i, 1).to_pylist() == one.keys.to_pylist()
    for k, v in bt.features.slice(i, 1).to_pylist()[0].items():
        assert one.features.column(k)[0].as_py() == pytest.approx(v, nan_ok=True), k
