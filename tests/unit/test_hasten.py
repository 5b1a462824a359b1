"""Under a CPU time budget, catboost's fixed configurations train hastened (a larger learning
rate) when its default fit is expected to outlast the seconds a fit aims at (``HASTE_HEADROOM``
under the per-fit limit), instead of being cut short; sampled configurations and unbudgeted
runs train as given."""

from __future__ import annotations

from pathlib import Path

import pytest

from tabstream.pipeline.families import Families, limits
from tabstream.pipeline.families.catboost import (
    MAX_HASTE,
    MAX_HASTENED_RATE,
    CatBoostFamily,
    patience,
)
from tabstream.pipeline.families.costs import trial_seconds
from tabstream.pipeline.types import Hastens, ProblemSpec
from tests.unit.pipeline_support import of_type, request, run_collect, store_with

SPEC = ProblemSpec("binclass", "y", ("no", "yes"))
CATBOOST = CatBoostFamily()


def test_a_default_fit_twice_too_slow_trains_at_twice_the_learning_rate() -> None:
    params = CATBOOST.hastened(CATBOOST.default_params(SPEC), 2.0, SPEC)
    assert params["learning_rate"] == pytest.approx(0.1)
    assert params["od_wait"] == patience(0.1)
    assert params["depth"] == 6


def test_a_fit_that_ends_in_time_is_unchanged() -> None:
    defaults = CATBOOST.default_params(SPEC)
    assert CATBOOST.hastened(defaults, 0.8, SPEC) == defaults


def test_haste_is_capped_in_factor_and_in_rate() -> None:
    defaults = CATBOOST.default_params(SPEC)
    assert CATBOOST.hastened(defaults, 50.0, SPEC)["learning_rate"] == pytest.approx(
        0.05 * MAX_HASTE
    )
    quick = defaults | {"learning_rate": 0.1}
    assert CATBOOST.hastened(quick, 50.0, SPEC)["learning_rate"] == MAX_HASTENED_RATE


def test_a_config_with_a_larger_rate_needs_less_haste() -> None:
    # 2 x too slow at the default 0.05 means 1.25 x at 0.08 (rounds ~ 1 / lr)
    config = CATBOOST.default_params(SPEC) | {"learning_rate": 0.08}
    assert CATBOOST.hastened(config, 2.0, SPEC)["learning_rate"] == pytest.approx(0.1)


def test_only_time_bounded_families_that_hasten_get_a_slowdown() -> None:
    families = Families()
    assert isinstance(families["catboost"], Hastens)
    assert not isinstance(families["tabm"], Hastens)
    got = limits.slowdowns(families, ["xgboost", "tabm", "catboost"], 4000, 5, 2, 1, 0.5)
    assert list(got) == ["catboost"]
    fit_s = trial_seconds("catboost", 4000, 5) / 5
    assert got["catboost"] == pytest.approx(fit_s / 0.5 * limits.HASTE_HEADROOM)


def test_a_fit_planned_to_end_just_inside_the_limit_still_hastens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # planned costs run short of a shuffled fold's fit: a fit planned at 90 % of the limit
    # would be cut, so it aims HASTE_HEADROOM under it
    monkeypatch.setattr(limits, "trial_seconds", lambda *a: 5 * 0.9 * 2.0)
    got = limits.slowdowns(Families(), ["catboost"], 4000, 5, 2, 1, 2.0)
    assert limits.HASTE_HEADROOM > 1.0
    assert got["catboost"] == pytest.approx(0.9 * limits.HASTE_HEADROOM)
    assert limits.haste_target(2.0) == pytest.approx(2.0 / limits.HASTE_HEADROOM)
    assert limits.hastened_note(60.0, got, 2.0)


def _default_trial_rate(tmp_path: Path, budget: float | None) -> tuple[float, list[str]]:
    store, ref = store_with(tmp_path, "credit_g", 300)
    req = request("credit_g", n_trials=2, n_splits=3, model_types=["catboost"])
    result, events = run_collect(store, ref, req, time_budget_s=budget)
    first = min(of_type(events, "TrialCompleted"), key=lambda e: e.trial)
    return float(first.params["learning_rate"]), result.notes


def test_a_budgeted_run_hastens_catboosts_defaults_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a default trial planned at 3 fits of 2 x the per-fit limit (2.5 s: 25 % of 30 s over 3
    # fits), 3 x the seconds a fit aims at; 2 such trials overrun the search's 25.5 s, so the
    # budget binds
    monkeypatch.setattr(limits, "HASTE_HEADROOM", 1.5)
    monkeypatch.setattr(limits, "trial_seconds", lambda *a: 3 * 2 * 2.5)
    rate, notes = _default_trial_rate(tmp_path, 30.0)
    assert rate == pytest.approx(0.15)
    (note,) = [n for n in notes if "hastened" in n]
    assert "catboost (3.0 x)" in note
    assert "1.7 s a fit aims at" in note


def test_a_budget_the_planned_search_fits_in_hastens_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a default fit planned at 200 / 3 s, over the 50 s per-fit limit of a 600 s budget, but 2
    # such trials fit in the search's 510 s
    monkeypatch.setattr(limits, "trial_seconds", lambda *a: 200.0)
    rate, notes = _default_trial_rate(tmp_path, 600.0)
    assert rate == pytest.approx(0.05)
    assert not [n for n in notes if "hastened" in n]


def test_an_unbudgeted_run_trains_catboosts_defaults_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "trial_seconds", lambda *a: 3 * 3 * 2.5)
    rate, notes = _default_trial_rate(tmp_path, None)
    assert rate == pytest.approx(0.05)
    assert not [n for n in notes if "hastened" in n]


def test_the_plan_binds_when_its_default_trials_overrun_the_search() -> None:
    one = trial_seconds("xgboost", 4000, 5) + trial_seconds("catboost", 4000, 5)
    assert limits.plan_binds(["xgboost", "catboost"], 4000, 5, 2, 1, 3, 2.9 * one)
    assert not limits.plan_binds(["xgboost", "catboost"], 4000, 5, 2, 1, 3, 3.1 * one)


def test_the_time_bounded_families_expected_past_the_per_fit_limit_are_cut_short() -> None:
    names, shape = ["xgboost", "catboost", "tabm"], (6916, 5, 0, 2)
    fit_s = {f: trial_seconds(f, *shape) / 5 for f in names}
    below, above = min(fit_s["catboost"], fit_s["tabm"]), max(fit_s["catboost"], fit_s["tabm"])
    assert limits.cut_short(names, *shape, 0.99 * below) == {"catboost", "tabm"}
    assert limits.cut_short(names, *shape, 1.01 * above) == frozenset()
    assert limits.cut_short(["xgboost"], *shape, 1e-6) == frozenset()
