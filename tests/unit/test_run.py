"""End-to-end run() on small slices of the shared datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from tabstream.adapters.artifacts.local import LocalArtifactStore
from tabstream.pipeline.families.tabm import TabMFamily
from tabstream.pipeline.finish.bundle import load_bundle
from tabstream.pipeline.train import DatasetRef, PipelineInputError, job_completed_event, run
from tabstream.schemas.run import TrainerRunRequest
from tests.unit.pipeline_support import of_type, request, run_collect, store_with


def test_binclass_kfold_registers_a_loadable_model(tmp_path: Path) -> None:
    store, ref = store_with(tmp_path, "credit_g", 300)
    result, events = run_collect(store, ref, request("credit_g"))
    trials = of_type(events, "TrialCompleted")
    assert [t.state for t in trials] == ["complete", "complete"]
    assert len(trials[0].fold_metrics) == 3 and "auc" in trials[0].metrics
    assert len(of_type(events, "RowCompleted")) == 1
    (registered,) = of_type(events, "ModelRegistered")
    assert result.best_model_id == registered.model_id
    assert result.leaderboard[0].model_id == registered.model_id
    assert result.metrics == ["auc"] and result.model_types == ["xgboost"]
    model = load_bundle(store, str(registered.model_id), registered.sha256)
    table = store.read_parquet(ref.key).slice(0, 20)
    labels = model.predict(table)
    assert set(labels) <= set(registered.classes)
    assert job_completed_event(result).leaderboard == result.leaderboard


def test_multiclass_holdout_random_strategy(tmp_path: Path) -> None:
    store, ref = store_with(tmp_path, "segment", 350)
    req = request("segment", n_splits=None, strategy="random", metrics=["logloss", "accuracy"])
    result, events = run_collect(store, ref, req)
    (trial, *_) = of_type(events, "TrialCompleted")
    assert len(trial.fold_metrics) == 1
    assert set(result.leaderboard[0].metrics) == {"logloss", "accuracy"}


def test_regression_and_reproducible(tmp_path: Path) -> None:
    store, ref = store_with(tmp_path, "abalone", 300)
    req = request("abalone", n_trials=3)
    first, _ = run_collect(store, ref, req)
    second, _ = run_collect(store, ref, req)
    strip = [(e.params, e.metrics) for e in first.leaderboard]
    assert strip == [(e.params, e.metrics) for e in second.leaderboard]
    assert first.leaderboard[0].metrics["rmse"] > 0


def test_timestamp_filter_uses_fewer_rows(tmp_path: Path) -> None:
    store, ref = store_with(tmp_path, "bikeshare", 600)
    flt = {"kind": "cmp", "col": "ts", "op": "lt", "value": "2011-01-10T00:00:00"}
    req = request("bikeshare", filter=flt, n_trials=1, n_splits=None)
    result, events = run_collect(store, ref, req)
    (registered,) = of_type(events, "ModelRegistered")
    assert "ts" in [f.name for f in registered.features]
    full = store.read_parquet(ref.key)
    model = load_bundle(store, str(registered.model_id), registered.sha256)
    assert model.predict(full.slice(0, 5)).shape == (5,)
    assert result.leaderboard[0].score is not None
    assert 0 < result.n_rows < 600


def test_bad_label_is_pipeline_input_error(tmp_path: Path) -> None:
    store, ref = store_with(tmp_path, "credit_g", 50)
    req = request("credit_g", task={"task_kind": "binclass", "label_column": "nope"})
    with pytest.raises(PipelineInputError, match="nope"):
        run_collect(store, ref, req)


def test_pareto_sweep_reports_a_front(tmp_path: Path) -> None:
    store, ref = store_with(tmp_path, "credit_g", 250)
    req = request("credit_g", metrics=["auc", "logloss"], grid_size=0.5, n_trials=2, n_splits=2)
    result, events = run_collect(store, ref, req)
    rows = of_type(events, "RowCompleted")
    assert sorted(tuple(r.weights) for r in rows) == [(0.0, 1.0), (0.5, 0.5), (1.0, 0.0)]
    assert result.pareto_front
    assert all(p.model_id is not None for p in result.pareto_front)
    assert job_completed_event(result).pareto_front == result.pareto_front


TINY_TABM = {"lr": 3e-3, "weight_decay": 0.0, "n_blocks": 1, "d_block": 32, "dropout": 0.0,
             "k": 4, "use_embeddings": False, "n_bins": 8, "d_embedding": 8, "batch_size": 64,
             "max_epochs": 4, "patience": 2, "time_limit_s": None}  # fmt: skip


def test_ensemble_of_two_families(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TabMFamily, "default_params", lambda self, spec: dict(TINY_TABM))
    lr = lambda self, trial, spec: TINY_TABM | {"lr": trial.suggest_float("lr", 1e-3, 1e-2)}  # noqa: E731
    monkeypatch.setattr(TabMFamily, "suggest", lr)
    store, ref = store_with(tmp_path, "credit_g", 200)
    req = request("credit_g", model_types=["xgboost", "tabm"], ensemble=True, n_splits=2)
    result, events = run_collect(store, ref, req)
    assert result.ensemble is not None
    weights = [m.weight for m in result.ensemble.members]
    assert sum(weights) == pytest.approx(1.0)
    best_single = max(t.metrics["auc"] for t in of_type(events, "TrialCompleted"))
    assert result.ensemble.metrics["auc"] >= best_single - 1e-12
    assert job_completed_event(result).ensemble == result.ensemble
    (registered,) = of_type(events, "ModelRegistered")
    assert registered.kind == "ensemble" and result.best_model_id == registered.model_id
    model = load_bundle(store, str(registered.model_id), registered.sha256)
    assert model.predict_raw(store.read_parquet(ref.key).slice(0, 7)).shape == (7, 2)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"random_state": -1}, "random_state"),
        ({"random_state": 2**40}, "random_state"),
        (
            {"metrics": ["rmse", "mae", "r2"], "grid_size": 0.01, "model_types": ["xgboost"]},
            "5,151 matrix rows",
        ),
    ],
)
def test_commands_older_than_the_admission_rules_fail_cleanly(
    tmp_path: Path, extra: dict[str, Any], needle: str
) -> None:
    """A RunRequested already in the log from before the API's checks fails the job with a
    clear reason, before the data is read or a grid is built."""
    task = {"task_kind": "regression", "label_column": "y"}
    body = TrainerRunRequest.model_validate({"dataset_id": str(uuid4()), "task": task, **extra})
    missing = DatasetRef(uuid4(), "datasets/none/data.parquet")
    with pytest.raises(PipelineInputError, match=needle):
        run(body, missing, LocalArtifactStore(tmp_path), lambda event: None, job_id=uuid4())
