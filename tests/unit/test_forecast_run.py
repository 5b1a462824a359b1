"""Forecasting end to end: run() on bikeshare, leaderboard, registered bundle, predict; metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest

from tabstream.pipeline.finish.bundle import load_bundle
from tabstream.pipeline.search.scoring import get_metric, resolve_metrics, score, with_mase_scale
from tabstream.pipeline.train import PipelineInputError
from tests.unit.pipeline_support import of_type, run_collect
from tests.unit.ts_support import bikeshare, stored, ts_request

TASK = {"task_kind": "forecasting", "label_column": "bikers", "id_column": "store",
        "timestamp_column": "ts", "horizon": 24}  # fmt: skip


def test_run_registers_a_model_that_forecasts_per_id(tmp_path: Path) -> None:
    table = bikeshare(1500)
    store, ref = stored(tmp_path, table)
    req = ts_request(TASK, metrics=["mase", "smape", "rmse"], n_splits=2)
    result, events = run_collect(store, ref, req)
    trials = of_type(events, "TrialCompleted")
    assert [t.state for t in trials] == ["complete", "complete"]
    assert len(trials[0].fold_metrics) == 2
    best = result.leaderboard[0]
    assert result.metrics == ["mase", "smape", "rmse"]
    assert 0 < best.metrics["mase"] < 1.5 and 0 < best.metrics["smape"] < 200
    (registered,) = of_type(events, "ModelRegistered")
    assert registered.task.task_kind == "forecasting"
    model = load_bundle(store, str(registered.model_id), registered.sha256)
    history = table.slice(0, 1200).select(["ts", "store", "bikers"])
    out = model.predict_table(history)
    assert out.column_names == ["store", "cutoff", "ts", "prediction"]
    assert out.num_rows == 1 and np.isfinite(out.column("prediction")[0].as_py())
    last = table.column("ts")[1199].as_py()
    assert (out.column("ts")[0].as_py() - last).total_seconds() == 24 * 3600
    assert model.predict(history).shape == (1,)


def test_run_on_weathersit_series_and_clear_run_errors(tmp_path: Path) -> None:
    table = bikeshare(1500)
    table = table.filter(pc.not_equal(table.column("weathersit"), "heavy rain/snow"))
    store, ref = stored(tmp_path, table)
    result, events = run_collect(store, ref, ts_request(TASK | {"id_column": "weathersit"},
                                                        n_trials=1))  # fmt: skip
    assert result.leaderboard[0].metrics["rmse"] > 0
    (registered,) = of_type(events, "ModelRegistered")
    model = load_bundle(store, str(registered.model_id), registered.sha256)
    out = model.predict_table(table.slice(800, 400))
    assert out.column("weathersit").to_pylist() == ["clear", "cloudy/misty", "light rain/snow"]
    with pytest.raises(PipelineInputError, match="longer than the data") as err:
        run_collect(store, ref, ts_request(TASK | {"horizon": 5000}))
    assert err.value.reason == "invalid_input"


def test_forecasting_metrics() -> None:
    y, pred = np.array([10.0, 0.0, 20.0]), np.array([12.0, 0.0, 10.0])
    assert score(get_metric("smape"), y, pred) == pytest.approx(100 * (4 / 22 + 0 + 20 / 30) / 3)
    (mase,) = with_mase_scale(resolve_metrics(["mase"], "forecasting"), 4.0)
    assert score(mase, y, pred) == pytest.approx(4.0 / 4.0)
    assert score(get_metric("mase"), y, pred) == pytest.approx(4.0 / 15.0)  # unbound: naive diff
    assert [m.name for m in resolve_metrics(None, "forecasting")] == ["rmse"]
    with pytest.raises(ValueError, match="does not apply"):
        resolve_metrics(["mase"], "regression")
