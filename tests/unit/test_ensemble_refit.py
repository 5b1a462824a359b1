"""Ensemble members blend their fold models with a refit on all rows (time permitting)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from tabstream.pipeline.families._common import FULL_DATA_ROUNDS
from tabstream.pipeline.families.xgboost import XGBoostFamily, XGBoostModel
from tabstream.pipeline.finish import register
from tabstream.pipeline.finish.bundle import load_bundle
from tests.unit.pipeline_support import of_type, request, run_collect, store_with


def test_members_carry_an_all_rows_refit_with_half_the_weight(tmp_path: Path) -> None:
    store, ref = store_with(tmp_path, "credit_g", 300)
    result, events = run_collect(store, ref, request("credit_g", n_trials=3, ensemble=True))
    (reg,) = of_type(events, "ModelRegistered")
    manifest = json.loads(store.get_bytes(f"models/{reg.model_id}/manifest.json"))
    assert result.ensemble is not None and len(manifest["members"]) == len(result.ensemble.members)
    model = load_bundle(store, str(reg.model_id), reg.sha256)
    for member, (_, folds, weights) in zip(manifest["members"], model.members, strict=True):
        assert len(member["folds"]) == 3 + 1
        assert weights == pytest.approx([0.5 / 3] * 3 + [register.FULL_DATA_SHARE])
        fold_rounds = [m.best_iteration + 1 for _, m in folds[:3]]
        full = folds[3][1]
        assert isinstance(full, XGBoostModel)
        assert full.best_iteration + 1 == round(np.mean(fold_rounds) * FULL_DATA_ROUNDS)
    weights = [m.weight for m in result.ensemble.members]
    assert weights == sorted(weights, reverse=True)
    assert manifest["pooling"] == "log"  # a classification ensemble pools log-probabilities


def test_refits_that_would_end_past_the_deadline_are_skipped() -> None:
    trial = SimpleNamespace(fit_s=3.0)
    job: Any = SimpleNamespace(deadline=None, ctx=SimpleNamespace(splits=[0, 1, 2]))
    assert register._refit_fits(job, trial)
    job.deadline = time.monotonic() + 10.0
    assert register._refit_fits(job, trial)
    job.deadline = time.monotonic() + 1.0
    assert not register._refit_fits(job, trial)


def test_a_spent_budget_keeps_fold_models_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, ref = store_with(tmp_path, "credit_g", 300)
    monkeypatch.setattr(register, "_refit_fits", lambda job, t: False)
    result, events = run_collect(store, ref, request("credit_g", n_trials=3, ensemble=True))
    (reg,) = of_type(events, "ModelRegistered")
    model = load_bundle(store, str(reg.model_id), reg.sha256)
    assert all(len(folds) == 3 for _, folds, _ in model.members)
    assert any("kept their fold models only" in note for note in result.notes)


def test_xgboost_full_data_rounds_follow_early_stopping() -> None:
    models = [XGBoostModel(None, None, b) for b in (9, 19, 29)]  # type: ignore[arg-type]
    params = XGBoostFamily().full_data_params({"learning_rate": 0.1}, models)
    assert params == {"learning_rate": 0.1, "n_estimators": 22, "early_stopping_rounds": None}


def test_xgboost_patience_scales_with_the_learning_rate() -> None:
    from tabstream.pipeline.families._common import patience

    assert patience(0.1) == 20
    assert patience(0.3) == 10
    assert patience(0.01) == 50


def test_under_a_budget_only_trials_with_kept_fold_models_are_candidates() -> None:
    from tabstream.pipeline.finish.leaderboard import ensemble_candidates

    trials = [SimpleNamespace(row=0, number=n) for n in range(4)]
    rows: Any = [SimpleNamespace(trials=trials)]
    kept = {(0, 1): [], (0, 3): []}
    job: Any = SimpleNamespace(deadline=None, ctx=SimpleNamespace(fold_models=kept))
    assert ensemble_candidates(job, rows) == trials
    job.deadline = time.monotonic() + 60
    assert ensemble_candidates(job, rows) == [trials[1], trials[3]]
    job.ctx.fold_models = {}
    assert ensemble_candidates(job, rows) == trials  # nothing kept (a resumed attempt): refit all
