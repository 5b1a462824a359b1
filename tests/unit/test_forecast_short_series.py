"""Forecasting with short series: left out of training with a note, predicted by the fallback
(last observed value, else the training label median); the job fails only when none is usable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tabstream.pipeline.finish.bundle import LoadedModel, load_bundle
from tabstream.pipeline.tasks.forecast import forecast_inputs
from tabstream.pipeline.tasks.prepare import prepare, prepare_notes
from tabstream.pipeline.train import PipelineInputError, RunResult
from tabstream.schemas.tasks import ForecastingTask
from tests.unit.pipeline_support import DATA, of_type, run_collect
from tests.unit.ts_support import stored, ts_request

TASK = {"task_kind": "forecasting", "label_column": "bikers", "id_column": "weathersit",
        "timestamp_column": "ts", "horizon": 24}  # fmt: skip
HEAVY = "heavy rain/snow"  # the one weathersit series of bikeshare with a single row
HOUR = 3600 * 10**9


def _bikeshare() -> pa.Table:
    return pq.read_table(DATA / "bikeshare.parquet").select(["ts", "weathersit", "bikers"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, LoadedModel]:
    """One seeded xgboost run on all of bikeshare, one series per ``weathersit``."""
    store, ref = stored(tmp_path_factory.mktemp("short"), _bikeshare())
    result, events = run_collect(store, ref, ts_request(TASK, n_trials=1, random_state=7))
    (registered,) = of_type(events, "ModelRegistered")
    return result, load_bundle(store, str(registered.model_id), registered.sha256)


def test_bikeshare_by_weathersit_completes_with_a_note(
    trained: tuple[RunResult, LoadedModel],
) -> None:
    result, model = trained
    assert result.leaderboard and result.leaderboard[0].metrics["rmse"] > 0
    (note,) = [n for n in result.notes if n.startswith("forecasting:")]
    assert note.startswith(
        f"forecasting: 1 of 4 series too short to train on (weathersit='{HEAVY}'"
    )
    assert "predicted by their last observed value" in note
    assert model.recipe is not None and HEAVY not in model.recipe["series_ids"]


def test_left_out_and_unseen_series_are_predicted_by_the_fallback(
    trained: tuple[RunResult, LoadedModel],
) -> None:
    _, model = trained
    table = _bikeshare()
    heavy_value = table.filter(pc.equal(table.column("weathersit"), HEAVY)).column("bikers")[0]
    t0 = table.column("ts")[0].value
    extra = _rows([("fog", t0, 5), ("fog", t0 + HOUR, 11), ("fog", t0 + 3 * HOUR, None),
                   ("ice", t0, None)])  # fmt: skip
    out = model.predict_table(pa.concat_tables([table, extra]))
    pred = dict(zip(out.column("weathersit").to_pylist(), out.column("prediction").to_pylist(),
                    strict=True))  # fmt: skip
    assert pred[HEAVY] == heavy_value.as_py()  # left out: its last (only) value
    assert pred["fog"] == 11  # unseen: its last observed value
    kept = table.filter(pc.not_equal(table.column("weathersit"), HEAVY)).column("bikers")
    assert pred["ice"] == pytest.approx(float(np.median(kept.to_numpy())))  # no value: median
    assert all(np.isfinite(pred[s]) for s in ("clear", "cloudy/misty", "light rain/snow"))
    assert model.predict(table).shape == (4,)


def test_every_series_too_short_is_a_clear_invalid_input(tmp_path: Path) -> None:
    t0 = 1_700_000_000 * 10**9
    singles = _rows([(s, t0 + i * HOUR, i) for i, s in enumerate("abc")])
    store, ref = stored(tmp_path, singles)
    with pytest.raises(PipelineInputError, match="no series is usable: all 3 series") as err:
        run_collect(store, ref, ts_request(TASK | {"horizon": 2}, n_trials=1))
    assert err.value.reason == "invalid_input"
    assert "fewer than 2 rows" in str(err.value)
    threes = _rows([(s, t0 + i * HOUR, i) for s in "abc" for i in range(3)])
    store, ref = stored(tmp_path / "threes", threes)
    with pytest.raises(PipelineInputError, match="no series is usable: horizon 4 steps") as err:
        run_collect(store, ref, ts_request(TASK | {"horizon": 4}, n_trials=1))
    assert err.value.reason == "invalid_input"


def test_series_without_a_training_pair_are_left_out_and_marked_for_fallback() -> None:
    t0 = 1_700_000_000 * 10**9
    long = [("a", t0 + i * HOUR, float(i % 7)) for i in range(40)]
    gappy = [("b", t0 + i * HOUR, 1.0) for i in (0, 1, 2, 10, 11)]  # 12 steps, none 5 apart
    table = _rows(long + gappy + [("c", t0, 3.0)])
    task = ForecastingTask(label_column="bikers", id_column="weathersit", timestamp_column="ts",
                           horizon=5)  # fmt: skip
    p = prepare(table, task)
    assert set(p.features.column("series_id").to_pylist()) == {"a"}
    assert p.recipe is not None and p.recipe["series_ids"] == ["a"]
    (note,) = prepare_notes(p)
    assert note.startswith("forecasting: 2 of 3 series too short to train on (weathersit='c', ")
    inputs = forecast_inputs(p.recipe, table)
    assert inputs.keys.column("weathersit").to_pylist() == ["a", "b", "c"]
    assert inputs.fallback is not None
    assert np.isnan(inputs.fallback[0]) and list(inputs.fallback[1:]) == [1.0, 3.0]
    assert list(inputs.with_fallback(np.array([9.0, 9.0, 9.0]))) == [9.0, 1.0, 3.0]


def _rows(rows: list[tuple[str, int, Any]]) -> pa.Table:
    ids, times, values = zip(*rows, strict=True)
    label_type = pa.float64() if any(isinstance(v, float) for v in values) else pa.int64()
    return pa.table(
        {
            "ts": pa.array(times, pa.int64()).cast(pa.timestamp("ns")),
            "weathersit": pa.array(ids, pa.string()),
            "bikers": pa.array(values, label_type),
        }
    )
