"""Under a time budget on a CPU the search limits one fit (``budget.fit_limit_s``): TabM and
catboost stop training there and keep what they learned, in the search and in the finish's
refits; the run names them in a note, and counts the fits the limit cut short."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import torch
from sklearn.datasets import make_classification

from tabstream.pipeline import train
from tabstream.pipeline.families import Families, limits
from tabstream.pipeline.finish import register
from tabstream.pipeline.search.budget import fit_limit_s, time_check
from tabstream.pipeline.types import FeatureMatrix, ProblemSpec
from tests.unit.pipeline_support import of_type, request, run_collect, store_with

torch.set_num_threads(1)
SPEC = ProblemSpec("binclass", "y", ("no", "yes"))
TABM = {"k": 4, "n_blocks": 1, "d_block": 64, "batch_size": 32, "max_epochs": 40,
        "patience": 40, "lr": 3e-3, "use_embeddings": False, "n_threads": 1}  # fmt: skip
CATBOOST = {"iterations": 200, "learning_rate": 0.05, "od_wait": 200, "n_threads": 1}


def _data() -> tuple[FeatureMatrix, np.ndarray, FeatureMatrix, np.ndarray]:
    X, y = make_classification(400, 6, n_informative=4, n_redundant=0, random_state=0)
    m = FeatureMatrix(X.astype(np.float32), tuple(f"f{i}" for i in range(6)), (False,) * 6)
    cut = 300
    head = FeatureMatrix(m.values[:cut], m.names, m.categorical)
    tail = FeatureMatrix(m.values[cut:], m.names, m.categorical)
    return head, y[:cut].astype(np.int64), tail, y[cut:].astype(np.int64)


def _fit(name: str, params: dict[str, Any], limit: float | None) -> tuple[Any, bool]:
    """The model, and whether the fit said it was cut short at the limit."""
    X, y, Xv, yv = _data()
    with time_check(None, limit) as watch:
        model = Families()[name].fit(X, y, Xv, yv, params, SPEC, "cpu", 0)
    return model, watch.cut


def test_the_fit_limit_is_set_only_inside_its_block() -> None:
    assert fit_limit_s() is None
    with time_check(None, 2.5):
        assert fit_limit_s() == 2.5
    assert fit_limit_s() is None


def test_tabm_stops_at_the_fit_limit_and_keeps_its_weights() -> None:
    bounded, cut = _fit("tabm", TABM, 1e-6)
    free, free_cut = _fit("tabm", TABM, None)
    assert bounded.config["epochs"] == 1 and cut  # stopped after its first batch, and said so
    assert free.config["epochs"] > 5 and not free_cut
    proba = bounded.predict_raw(_data()[2])
    assert proba.shape == (100, 2) and np.isfinite(proba).all()


def test_catboost_stops_at_the_fit_limit_and_keeps_its_trees() -> None:
    bounded, cut = _fit("catboost", CATBOOST, 1e-6)
    free, free_cut = _fit("catboost", CATBOOST, None)
    assert bounded.model.tree_count_ == 1 and cut
    assert free.model.tree_count_ > 50 and not free_cut
    assert np.isfinite(bounded.predict_raw(_data()[2])).all()


def test_a_budgeted_cpu_run_names_the_families_whose_fits_it_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "trial_seconds", lambda *a: 100.0)  # the plan overruns 30 s
    store, ref = store_with(tmp_path, "credit_g", 300)
    req = request("credit_g", n_trials=1, n_splits=3, model_types=["xgboost", "catboost"])
    result, events = run_collect(store, ref, req, time_budget_s=30.0)
    (note,) = [n for n in result.notes if "each fit of" in n]
    assert "each fit of catboost stops after at most 2.5 s" in note  # 25 % of 30 s over 3 fits
    assert "xgboost" not in note
    assert len(of_type(events, "TrialCompleted")) == 2


def test_a_budgeted_run_counts_the_fits_its_limit_cut_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a binding plan whose per-fit limit stops every catboost fit after its first tree
    monkeypatch.setattr(train, "plan_binds", lambda *a: True)
    monkeypatch.setattr(train, "fit_limit", lambda budget, fits: 1e-6)
    store, ref = store_with(tmp_path, "credit_g", 300)
    req = request("credit_g", n_trials=2, n_splits=3, model_types=["xgboost", "catboost"])
    result, events = run_collect(store, ref, req, time_budget_s=60.0)
    (note,) = [n for n in result.notes if n.startswith("fits cut short")]
    assert note.endswith("per-fit limit (keeping what they had learned): catboost 6 of 6")
    assert len(of_type(events, "TrialCompleted")) == 4  # xgboost ignores the limit: not named


def test_a_budget_the_planned_search_fits_in_limits_no_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # were a limit set, it would stop every catboost fit after its first tree
    monkeypatch.setattr(train, "fit_limit", lambda budget, fits: 1e-6)
    store, ref = store_with(tmp_path, "credit_g", 300)
    req = request("credit_g", n_trials=2, n_splits=3, model_types=["xgboost", "catboost"])
    plain, _ = run_collect(store, ref, req)
    budgeted, _ = run_collect(store, ref, req, time_budget_s=600.0)
    assert _board(plain) == _board(budgeted)
    assert not [n for n in budgeted.notes if "each fit of" in n or "cut short" in n]


def _board(result: Any) -> list[tuple[Any, Any]]:
    return [(e.params, e.metrics) for e in result.leaderboard]


def _refit_job(limit: float | None) -> Any:
    X, y, _, _ = _data()
    features = pa.table({name: X.values[:, i] for i, name in enumerate(X.names)})
    ctx = SimpleNamespace(families=Families(), features=features, y=y, spec=SPEC, device="cpu",
                          random_state=0, fit_limit_s=limit)  # fmt: skip
    return SimpleNamespace(ctx=ctx)


def test_a_refit_on_all_rows_stops_at_the_searchs_fit_limit() -> None:
    bounded = register._refit_all(_refit_job(1e-6), "tabm", TABM)
    free = register._refit_all(_refit_job(None), "tabm", TABM)
    assert json.loads(bounded.files["config.json"])["epochs"] == 1
    assert json.loads(free.files["config.json"])["epochs"] > 5
