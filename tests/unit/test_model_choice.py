"""Which families a run trains on a CPU without ``time_budget_s`` (``families.choice``), and
``run()`` reporting it in the job's notes."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from tabstream.pipeline.families import Families, cpu_search_seconds
from tabstream.pipeline.families.choice import choose_model_types
from tabstream.pipeline.families.costs import CPU_FIT_COST
from tabstream.pipeline.options import FamilyOptions, PipelineOptions
from tabstream.pipeline.train import job_completed_event
from tabstream.schemas.run import TrainerRunRequest
from tests.unit.pipeline_support import of_type, request, run_collect, store_with


def req(**kw: Any) -> TrainerRunRequest:
    body = {"dataset_id": str(uuid4()), "task": {"task_kind": "binclass", "label_column": "y"},
            "n_splits": 5}  # fmt: skip
    return TrainerRunRequest.model_validate(body | kw)


def one_thread(**kw: Any) -> Families:
    """Families fitting on one thread: the estimates do not depend on this machine's cores."""
    return Families(FamilyOptions(threads=1, **kw))


@pytest.fixture
def with_tabicl(tmp_path: Path) -> Families:
    """Families whose tabicl checkpoint is present (a placeholder file: nothing loads it)."""
    checkpoint = tmp_path / "tabicl.ckpt"
    checkpoint.write_bytes(b"x")
    return Families(FamilyOptions(threads=1, tabicl_checkpoint=checkpoint))


def test_cpu_search_seconds_scales_with_rows_trials_and_fits() -> None:
    # 5 fits per trial by default, each on 4/5 of the rows (a holdout's fit: 80 % of them)
    tabm = CPU_FIT_COST["tabm"]
    assert cpu_search_seconds("tabm", 1000, 4) == pytest.approx(4 * 5 * tabm.seconds(800))
    assert cpu_search_seconds("tabm", 1000, 4, n_fits=1) == pytest.approx(4 * tabm.seconds(800))
    assert cpu_search_seconds("xgboost", 10**6, 1) > 100 * cpu_search_seconds("xgboost", 10**4, 1)
    assert cpu_search_seconds("unknown", 1000, 1) == pytest.approx(5 * 160.0)  # 0.2 s a row


def test_default_set_on_cpu_without_budget_leaves_out_slow_families(with_tabicl: Families) -> None:
    choice = choose_model_types(req(), 10_000, 20, "cpu", with_tabicl)
    cheap_first = ["xgboost", "lightgbm", "randomforest", "extratrees", "catboost", "tabm", "xrfm"]
    assert choice.chosen and choice.model_types == cheap_first
    chosen, left_out = choice.notes
    assert chosen == f"default model types chosen: {cheap_first}"
    assert "left out of the default model types on CPU: tabicl (~1,640 s)" in left_out
    assert "10,000 rows x 4 trials" in left_out and "900 s per family" in left_out
    assert "time_budget_s" in left_out and "tabm" not in left_out


def test_a_family_under_the_limit_stays(with_tabicl: Families) -> None:
    choice = choose_model_types(req(), 1000, 20, "cpu", with_tabicl)
    assert choice.model_types[-1] == "tabicl" and len(choice.model_types) == 8
    slow = choose_model_types(req(), 40_000, 20, "cpu", with_tabicl)
    assert "xrfm" not in slow.model_types and "tabm" not in slow.model_types
    assert "tabm (~1,405 s), xrfm (~15,539 s)" in slow.notes[-1]


def test_trials_and_pareto_rows_count_in_the_estimate() -> None:
    few = choose_model_types(req(n_trials=1), 40_000, 20, "cpu", one_thread())
    assert "tabm" in few.model_types and "tabm" not in few.notes[-1]
    sweep = req(n_trials=1, metrics=["auc", "logloss"], grid_size=0.5)  # 3 weight vectors
    assert "tabm (~1,054 s)" in choose_model_types(sweep, 40_000, 20, "cpu", one_thread()).notes[-1]


def test_a_pareto_sweep_trains_the_cheapest_default_families() -> None:
    sweep = req(n_trials=1, metrics=["auc", "logloss"], grid_size=0.5)
    choice = choose_model_types(sweep, 1000, 20, "cpu", one_thread())
    assert choice.model_types == ["lightgbm", "xgboost", "xrfm", "randomforest"]
    assert choice.notes[0] == f"default model types chosen: {choice.model_types}"


def test_a_budget_names_the_default_families_it_leaves_out() -> None:
    choice = choose_model_types(req(n_splits=5), 5000, 20, "cpu", one_thread(), 20.0)
    assert choice.model_types == ["xgboost", "lightgbm"]
    (note,) = [n for n in choice.notes if "time_budget_s 20 s" in n]
    assert "randomforest (~7.2 s), extratrees (~7.7 s), catboost (~20 s)" in note
    assert "default trial of 5 fits on 5,000 rows, over 25% of the budget (3x that for" in note
    assert "catboost, tabm, whose fits stop at a time limit)" in note
    holdout = choose_model_types(req(n_splits=None), 5000, 20, "cpu", one_thread(), 20.0)
    bounded = ["catboost", "tabm"]  # ~4.1 s and ~14 s, within 3 x 5 s
    assert holdout.model_types == ["xgboost", "lightgbm", "randomforest", "extratrees", *bounded]


@pytest.mark.parametrize(
    ("device", "budget", "options"),
    [
        ("cuda", None, FamilyOptions()),
        ("cuda:0", None, FamilyOptions()),
        ("cpu", 1e6, FamilyOptions()),
        ("cpu", None, FamilyOptions(cpu_family_max_s=0)),
        ("cpu", None, FamilyOptions(cpu_family_max_s=1e9)),
    ],
)
def test_no_family_is_left_out_on_gpu_under_a_budget_or_without_a_limit(
    device: str, budget: float | None, options: FamilyOptions
) -> None:
    choice = choose_model_types(req(), 5000, 20, device, Families(options), budget)
    assert "tabm" in choice.model_types
    assert not [n for n in choice.notes if "left out" in n]


def test_explicit_slow_family_on_cpu_is_kept_with_an_estimate() -> None:
    asked = req(model_types=["tabm", "xgboost"])
    choice = choose_model_types(asked, 40_000, 20, "cpu", one_thread())
    assert not choice.chosen and choice.model_types == ["tabm", "xgboost"]
    assert choice.notes == [
        "tabm on CPU without time_budget_s: estimated ~1,405 s for 40,000 rows x 4 trials; "
        "set time_budget_s to bound the run"
    ]


def test_explicit_families_get_no_note_when_fast_or_budgeted() -> None:
    fast = req(model_types=["xgboost", "xrfm"])
    assert choose_model_types(fast, 1000, 20, "cpu", one_thread()).notes == []
    slow = req(model_types=["tabm"])
    assert choose_model_types(slow, 40_000, 20, "cpu", one_thread(), 60.0).notes == []
    assert choose_model_types(slow, 40_000, 20, "cuda", one_thread()).notes == []


def test_run_reports_the_left_out_families_in_the_job_notes(tmp_path: Path) -> None:
    store, ref = store_with(tmp_path, "credit_g", 200)
    strict = PipelineOptions(FamilyOptions(threads=1, cpu_family_max_s=0.2))
    req = request("credit_g", model_types=None, n_trials=1, n_splits=2)
    result, events = run_collect(store, ref, req, options=strict)
    cheap = ["xrfm", "lightgbm", "xgboost"]
    assert result.default_models_chosen and result.model_types == cheap
    assert {r.family for r in of_type(events, "RowCompleted")} == set(cheap)
    notes = job_completed_event(result).notes
    assert f"default model types chosen: {cheap}" in notes
    (left_out,) = [n for n in notes if n.startswith("left out")]
    assert "tabm (~5.9 s)" in left_out and "extratrees (~0.5 s)" in left_out


def test_the_limit_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from tabstream.bootstrap.common import pipeline_options
    from tabstream.settings import PipelineSettings

    assert pipeline_options(PipelineSettings()).families.cpu_family_max_s == 900.0
    monkeypatch.setenv("TABSTREAM_CPU_FAMILY_MAX_S", "60")
    assert pipeline_options(PipelineSettings()).families.cpu_family_max_s == 60.0
    monkeypatch.setenv("TABSTREAM_CPU_FAMILY_MAX_S", "-1")
    with pytest.raises(ValidationError, match="cpu_family_max_s"):
        PipelineSettings()
