"""Search rows: resume, failing trials, unavailable families, generic journal backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from tabstream.pipeline.families.xgboost import XGBoostFamily
from tabstream.pipeline.train import Cancelled, run
from tabstream.pipeline.types import ProblemSpec
from tests.unit.pipeline_support import ONE_THREAD, of_type, request, run_collect, store_with

SPEC_BIN = ProblemSpec("binclass", "creditability", ("bad", "good"))


def test_resume_does_not_redo_finished_trials(tmp_path: Path) -> None:
    store, ref = store_with(tmp_path, "credit_g", 200)
    req, job_id = request("credit_g", n_trials=4, n_splits=2), uuid4()
    first: list[Any] = []

    def stop() -> bool:
        return len(of_type(first, "TrialCompleted")) >= 2

    with pytest.raises(Cancelled):
        run(req, ref, store, first.append, job_id=job_id, should_stop=stop, options=ONE_THREAD)
    assert len(of_type(first, "TrialCompleted")) == 2
    _, events = run_collect(store, ref, req, job_id=job_id)
    redone = of_type(events, "TrialCompleted")
    assert [t.trial for t in redone] == [2, 3]
    (row,) = of_type(events, "RowCompleted")
    assert row.n_trials == 4 and row.n_failed == 0


def test_a_resume_announces_the_finished_trials_the_log_lost(tmp_path: Path) -> None:
    """The previous attempt died after its journal recorded trial 1 but before the log got
    trial 1's TrialCompleted: the next attempt announces it (and only it) before going on."""
    store, ref = store_with(tmp_path, "credit_g", 200)
    req, job_id = request("credit_g", n_trials=3, n_splits=2), uuid4()
    first: list[Any] = []

    def stop() -> bool:
        return len(of_type(first, "TrialCompleted")) >= 2

    with pytest.raises(Cancelled):
        run(req, ref, store, first.append, job_id=job_id, should_stop=stop, options=ONE_THREAD)
    lost = of_type(first, "TrialCompleted")[1]
    _, events = run_collect(store, ref, req, job_id=job_id, announced=frozenset({(0, 0)}))
    trials = of_type(events, "TrialCompleted")
    assert [t.trial for t in trials] == [1, 2]
    again = trials[0]
    assert (again.state, again.params, again.metrics) == (lost.state, lost.params, lost.metrics)
    _, quiet = run_collect(store, ref, req, job_id=job_id, announced=frozenset({(0, 0), (0, 1)}))
    assert [t.trial for t in of_type(quiet, "TrialCompleted")] == [2]


def test_cancel_mid_trial_redoes_it_with_the_defaults(tmp_path: Path) -> None:
    store, ref = store_with(tmp_path, "credit_g", 200)
    req, job_id, calls = request("credit_g", n_trials=2, n_splits=2), uuid4(), [0]

    def stop_in_second_fold() -> bool:
        calls[0] += 1
        return calls[0] >= 3

    with pytest.raises(Cancelled):
        run(
            req,
            ref,
            store,
            lambda e: None,
            job_id=job_id,
            should_stop=stop_in_second_fold,
            options=ONE_THREAD,
        )
    _, events = run_collect(store, ref, req, job_id=job_id)
    trials = of_type(events, "TrialCompleted")
    assert [t.trial for t in trials] == [1, 2]
    assert trials[0].params["learning_rate"] == 0.1 and trials[0].params["max_depth"] == 6


def test_failing_trial_is_recorded_and_row_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fit, calls = XGBoostFamily.fit, {"n": 0}

    def flaky(self: XGBoostFamily, *args: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("CUDA out of memory (simulated)")
        return real_fit(self, *args, **kw)

    monkeypatch.setattr(XGBoostFamily, "fit", flaky)
    store, ref = store_with(tmp_path, "credit_g", 200)
    result, events = run_collect(store, ref, request("credit_g", n_trials=2, n_splits=2))
    states = [(t.state, t.error) for t in of_type(events, "TrialCompleted")]
    assert states[0][0] == "failed" and "out of memory" in (states[0][1] or "")
    assert states[1] == ("complete", None)
    (row,) = of_type(events, "RowCompleted")
    assert row.n_failed == 1 and row.best_trial == 1
    assert result.best_model_id is not None


def test_unavailable_family_fails_its_row_only(tmp_path: Path) -> None:
    """tabicl without a configured checkpoint (``ONE_THREAD`` names none)."""
    store, ref = store_with(tmp_path, "credit_g", 200)
    req = request("credit_g", model_types=["tabicl", "xgboost"], n_trials=1, n_splits=2)
    result, events = run_collect(store, ref, req)
    rows = {r.family: r for r in of_type(events, "RowCompleted")}
    assert rows["tabicl"].error and rows["tabicl"].best_trial is None
    assert rows["xgboost"].error is None
    assert [e.family for e in result.leaderboard] == ["xgboost", "tabicl"]
    assert result.leaderboard[1].model_id is None


class _RemoteLike:
    """A store without local paths, so the journal goes through get/append bytes."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def local_path(self, key: str) -> None:
        return None


def test_blob_journal_resumes_too(tmp_path: Path) -> None:
    store, ref = store_with(tmp_path, "credit_g", 150)
    remote, job_id = _RemoteLike(store), uuid4()
    req = request("credit_g", n_trials=1, n_splits=2)
    run_collect(remote, ref, req, job_id=job_id)  # type: ignore[arg-type]
    assert store.exists(f"jobs/{job_id}/study.journal")
    _, events = run_collect(remote, ref, req, job_id=job_id)  # type: ignore[arg-type]
    assert of_type(events, "TrialCompleted") == []


def test_defaults_then_the_portfolio_then_the_sampler_across_a_resume(tmp_path: Path) -> None:
    store, ref = store_with(tmp_path, "credit_g", 200)
    req, job_id = request("credit_g", n_trials=6, n_splits=2), uuid4()
    family = XGBoostFamily()
    first: list[Any] = []

    def stop() -> bool:
        return len(of_type(first, "TrialCompleted")) >= 2

    with pytest.raises(Cancelled):
        run(req, ref, store, first.append, job_id=job_id, should_stop=stop, options=ONE_THREAD)
    _, events = run_collect(store, ref, req, job_id=job_id)
    trials = of_type(first, "TrialCompleted") + of_type(events, "TrialCompleted")
    assert [t.trial for t in trials] == [0, 1, 2, 3, 4, 5]
    defaults = family.default_params(SPEC_BIN)
    assert {k: trials[0].params[k] for k in defaults} == defaults
    portfolio = family.portfolio(SPEC_BIN)
    for trial, config in zip(trials[1:4], portfolio, strict=True):
        assert {k: trial.params[k] for k in config} == config
    sampled = trials[4].params["learning_rate"]
    assert sampled not in [c["learning_rate"] for c in portfolio]
