"""run(time_budget_s=...): the search stops in time, finishes normally, and changes nothing
when the budget does not bind; in-memory ensemble fold models equal refitted ones."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from tabstream.pipeline import train
from tabstream.pipeline.families import default_model_types
from tabstream.pipeline.families.xgboost import XGBoostFamily
from tabstream.pipeline.finish.bundle import load_bundle
from tabstream.pipeline.search import study
from tabstream.pipeline.train import PipelineInputError
from tests.unit.pipeline_support import of_type, request, run_collect, store_with


def _board(result: Any) -> list[tuple[Any, Any]]:
    return [(e.params, e.metrics) for e in result.leaderboard]


def test_a_budget_that_does_not_bind_changes_nothing(tmp_path: Path) -> None:
    store, ref = store_with(tmp_path, "abalone", 300)
    req = request("abalone", n_trials=3)
    plain, plain_events = run_collect(store, ref, req)
    budgeted, events = run_collect(store, ref, req, time_budget_s=3600.0)
    assert _board(plain) == _board(budgeted)
    assert len(of_type(events, "TrialCompleted")) == 3
    assert len(of_type(plain_events, "TrialCompleted")) == 3
    assert any("time budget" in n for n in budgeted.notes)
    assert not any("time budget" in n for n in plain.notes)


def test_a_tight_budget_stops_the_search_and_still_registers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fit = XGBoostFamily.fit

    def slow_fit(self: XGBoostFamily, *args: Any, **kw: Any) -> Any:
        time.sleep(0.2)
        return real_fit(self, *args, **kw)

    monkeypatch.setattr(XGBoostFamily, "fit", slow_fit)
    store, ref = store_with(tmp_path, "credit_g", 300)
    req = request("credit_g", n_trials=1000, ensemble=True)
    start = time.monotonic()
    result, events = run_collect(store, ref, req, time_budget_s=4.0)
    elapsed = time.monotonic() - start
    trials = of_type(events, "TrialCompleted")
    assert 1 <= len(trials) < 20
    assert elapsed < 4.0 + 3.0  # one fold of overrun at most, plus the finish
    (registered,) = of_type(events, "ModelRegistered")
    assert result.best_model_id == registered.model_id
    model = load_bundle(store, str(registered.model_id), registered.sha256)
    assert model.predict_raw(store.read_parquet(ref.key).slice(0, 5)).shape == (5, 2)
    (row,) = of_type(events, "RowCompleted")
    assert row.n_trials == len(trials)


def test_the_budget_must_be_positive(tmp_path: Path) -> None:
    store, ref = store_with(tmp_path, "credit_g", 100)
    with pytest.raises(PipelineInputError, match="time_budget_s"):
        run_collect(store, ref, request("credit_g"), time_budget_s=0.0)


def test_kept_fold_models_give_the_same_ensemble_as_refits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, ref = store_with(tmp_path, "credit_g", 300)
    req = request("credit_g", n_trials=4, ensemble=True)
    kept, kept_events = run_collect(store, ref, req)
    monkeypatch.setattr(train, "KEEP_FOLD_MODELS", 0)
    refit, refit_events = run_collect(store, ref, req)
    assert kept.ensemble == refit.ensemble
    table = store.read_parquet(ref.key).slice(0, 50)
    preds = []
    for events in (kept_events, refit_events):
        (reg,) = of_type(events, "ModelRegistered")
        preds.append(load_bundle(store, str(reg.model_id), reg.sha256).predict_raw(table))
    np.testing.assert_allclose(preds[0], preds[1], rtol=1e-6)


def _ctx(row_deadline: float | None, search_deadline: float | None) -> Any:
    return SimpleNamespace(row_deadline=row_deadline, search_deadline=search_deadline)


def test_trial_start_and_stop_rules() -> None:
    now = time.monotonic()
    empty, done = SimpleNamespace(trials=[]), SimpleNamespace(trials=["t0"])
    assert study._may_start(_ctx(None, None), done, [100.0])
    # the first trial of a row starts while the search has time, even past the row's share
    assert study._may_start(_ctx(now - 1, now + 10), empty, [])
    assert not study._may_start(_ctx(now + 10, now - 1), empty, [])
    # later trials start only when the median duration still fits in the row's share
    assert study._may_start(_ctx(now + 10, now + 20), done, [1.0, 2.0, 30.0])
    assert not study._may_start(_ctx(now + 10, now + 20), done, [20.0, 30.0])
    # a running trial stops past the row deadline once the row has a result
    study._check_time(_ctx(now - 1, now + 10), empty)
    with pytest.raises(study.OutOfTime):
        study._check_time(_ctx(now - 1, now + 10), done)
    with pytest.raises(study.OutOfTime):
        study._check_time(_ctx(now + 10, now - 1), empty)


def test_default_model_types_under_a_cpu_budget() -> None:
    cheap_first = ["lightgbm", "xgboost", "xrfm", "randomforest", "extratrees", "catboost", "tabm"]
    assert default_model_types(1000, 20, "cpu", False) == cheap_first
    # tabm's 5-fold trial, ~15 s on one thread, is over 3 x 25 % of 15 s, within it of 60 s
    assert default_model_types(1000, 20, "cpu", False, 15.0) == cheap_first[:6]
    assert default_model_types(1000, 20, "cpu", False, 60.0) == cheap_first
    assert default_model_types(5000, 20, "cpu", False, 20.0) == ["xgboost", "lightgbm"]
    # a holdout trial: forests ~1.5 s and xrfm ~5.4 s against 5 s; catboost, tabm within 15 s
    holdout = ["xgboost", "lightgbm", "randomforest", "extratrees", "catboost", "tabm"]
    assert default_model_types(5000, 20, "cpu", False, 20.0, n_fits=1) == holdout
    assert default_model_types(1000, 20, "cpu", False, 1e5) == cheap_first
    gpu = ["lightgbm", "xgboost", "catboost", "extratrees", "randomforest", "xrfm", "tabm"]
    assert default_model_types(1000, 20, "cuda", False, 1.0) == gpu


def test_a_single_endless_fit_stops_inside_its_boosting_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endless = {"learning_rate": 0.01, "max_depth": 3, "n_estimators": 10**7,
               "early_stopping_rounds": 10**7}  # fmt: skip
    monkeypatch.setattr(XGBoostFamily, "default_params", lambda self, spec: endless)
    store, ref = store_with(tmp_path, "credit_g", 300)
    start = time.monotonic()
    _, events = run_collect(
        store, ref, request("credit_g", n_trials=1, n_splits=None), time_budget_s=2.0
    )
    assert time.monotonic() - start < 2.0 + 1.5
    assert of_type(events, "TrialCompleted") == []
    (row,) = of_type(events, "RowCompleted")
    assert row.error is not None and "time budget" in row.error


def test_check_time_is_a_no_op_outside_a_budgeted_search() -> None:
    from tabstream.pipeline.search.budget import OutOfTime, check_time, time_check

    check_time()

    def due() -> None:
        raise OutOfTime

    with time_check(due), pytest.raises(OutOfTime):
        check_time()
    check_time()


def test_boosting_costs_grow_with_the_classes() -> None:
    binary = default_model_types(2000, 20, "cpu", False, 30.0, n_fits=5, n_classes=2)
    seven = default_model_types(2000, 20, "cpu", False, 30.0, n_fits=5, n_classes=7)
    assert "catboost" in binary and "catboost" not in seven  # ~5 s a trial, ~34 s with 7
    # boosting grows a tree per class and round: with 7 classes xrfm passes xgboost
    assert binary.index("xgboost") < binary.index("randomforest")
    assert seven.index("xgboost") > seven.index("xrfm")
