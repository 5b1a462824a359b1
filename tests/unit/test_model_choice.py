"""Which families a run trains on a CPU without ``time_budget_s`` (``families.choice``), and
``run()`` reporting it in the job's notes."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from tabstream.pipeline.families import Families, cpu_search_seconds
from tabstream.pipeline.families.choice import choose_model_types
from tabstream.pipeline.options import FamilyOptions, PipelineOptions
from tabstream.pipeline.train import job_completed_event
from tabstream.schemas.run import TrainerRunRequest
from tests.unit.pipeline_support import of_type, request, run_collect, store_with


def req(**kw: Any) -> TrainerRunRequest:
    body = {"dataset_id": str(uuid4()), "task": {"task_kind": "binclass", "label_column": "y"}}
    return TrainerRunRequest.model_validate(body | kw)


@pytest.fixture
def with_tabicl(tmp_path: Path) -> Families:
    """Families whose tabicl checkpoint is present (a placeholder file: nothing loads it)."""
    checkpoint = tmp_path / "tabicl.ckpt"
    checkpoint.write_bytes(b"x")
    return Families(FamilyOptions(tabicl_checkpoint=checkpoint))


def test_cpu_search_seconds_scales_with_rows_and_trials() -> None:
    assert cpu_search_seconds("tabm", 1000, 4) == 4000.0
    assert cpu_search_seconds("xgboost", 10**6, 100) == 0.0
    assert cpu_search_seconds("unknown", 10, 1) == 10.0


def test_default_set_on_cpu_without_budget_leaves_out_slow_families(with_tabicl: Families) -> None:
    choice = choose_model_types(req(), 5000, 20, "cpu", with_tabicl)
    assert choice.chosen and choice.model_types == ["xgboost", "xrfm"]
    chosen, left_out = choice.notes
    assert chosen == "default model types chosen: ['xgboost', 'xrfm']"
    assert "left out of the default model types on CPU: tabicl (~1,000 s), tabm (~20,000 s)" in (
        left_out
    )
    assert "5,000 rows x 4 trials" in left_out and "900 s per family" in left_out
    assert "time_budget_s" in left_out and "xrfm" not in left_out.split("estimated")[0]


def test_a_family_under_the_limit_stays(with_tabicl: Families) -> None:
    choice = choose_model_types(req(), 1000, 20, "cpu", with_tabicl)
    assert choice.model_types == ["tabicl", "xgboost", "xrfm"]
    assert "tabm (~4,000 s)" in choice.notes[-1] and "tabicl" not in choice.notes[-1]


def test_trials_and_pareto_rows_count_in_the_estimate() -> None:
    few = choose_model_types(req(n_trials=1), 800, 20, "cpu", Families())
    assert few.model_types == ["tabm", "xgboost", "xrfm"] and len(few.notes) == 1
    sweep = req(n_trials=1, metrics=["auc", "logloss"], grid_size=0.5)  # 3 weight vectors
    assert "tabm (~2,400 s)" in choose_model_types(sweep, 800, 20, "cpu", Families()).notes[-1]


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
    choice = choose_model_types(req(model_types=["tabm", "xgboost"]), 1000, 20, "cpu", Families())
    assert not choice.chosen and choice.model_types == ["tabm", "xgboost"]
    assert choice.notes == [
        "tabm on CPU without time_budget_s: estimated ~4,000 s for 1,000 rows x 4 trials; "
        "set time_budget_s to bound the run"
    ]


def test_explicit_families_get_no_note_when_fast_or_budgeted() -> None:
    fast = req(model_types=["xgboost", "xrfm"])
    assert choose_model_types(fast, 1000, 20, "cpu", Families()).notes == []
    slow = req(model_types=["tabm"])
    assert choose_model_types(slow, 1000, 20, "cpu", Families(), 60.0).notes == []
    assert choose_model_types(slow, 1000, 20, "cuda", Families()).notes == []


def test_run_reports_the_left_out_families_in_the_job_notes(tmp_path: Path) -> None:
    store, ref = store_with(tmp_path, "credit_g", 200)
    strict = PipelineOptions(FamilyOptions(threads=1, cpu_family_max_s=1.0))
    req = request("credit_g", model_types=None, n_trials=1, n_splits=2)
    result, events = run_collect(store, ref, req, options=strict)
    assert result.default_models_chosen and result.model_types == ["xgboost"]
    assert {r.family for r in of_type(events, "RowCompleted")} == {"xgboost"}
    notes = job_completed_event(result).notes
    assert "default model types chosen: ['xgboost']" in notes
    (left_out,) = [n for n in notes if n.startswith("left out")]
    assert "tabm (~200 s)" in left_out and "xrfm (~3 s)" in left_out


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
