"""families.costs: measured fit costs interpolated between sizes, threads by Amdahl's law, and
the per-fit time limit of the families whose fits can stop early."""

from __future__ import annotations

import pytest

from tabstream.pipeline.families import (
    BOUNDED_STRETCH,
    BUDGET_SHARE,
    default_model_types,
    first_trial_seconds,
    fit_limit,
    trial_seconds,
)
from tabstream.pipeline.families.costs import CPU_FIT_COST, TIME_BOUNDED, FitCost, fit_rows

COST = FitCost(((1000, 1.0), (4000, 8.0)), parallel=0.5)


def test_a_fit_cost_is_interpolated_in_log_log_space() -> None:
    assert COST.seconds(1000) == pytest.approx(1.0)
    assert COST.seconds(4000) == pytest.approx(8.0)
    assert COST.seconds(2000) == pytest.approx(8.0**0.5)  # halfway in log rows: sqrt(1 * 8)
    assert COST.seconds(16000) == pytest.approx(8.0 * 8.0)  # the top segment's power (1.5) on
    assert COST.seconds(250) == pytest.approx(1.0 / 8.0)  # and the bottom one's below


def test_threads_speed_up_the_parallel_share_only() -> None:
    assert COST.seconds(1000, threads=2) == pytest.approx(0.75)
    assert COST.seconds(1000, threads=1000) == pytest.approx(0.5, rel=1e-2)
    serial = FitCost(((1000, 1.0), (4000, 8.0)))
    assert serial.seconds(1000, threads=8) == pytest.approx(1.0)


def test_boosting_costs_one_fit_per_class_beyond_two() -> None:
    boosted = FitCost(((1000, 1.0), (4000, 8.0)), per_class=True)
    assert boosted.seconds(1000, n_classes=2) == pytest.approx(1.0)
    assert boosted.seconds(1000, n_classes=7) == pytest.approx(7.0)
    assert COST.seconds(1000, n_classes=7) == pytest.approx(1.0)


def test_a_trial_is_its_fits_on_their_training_rows() -> None:
    assert fit_rows(1000, 5) == 800 and fit_rows(1000, 10) == 900 and fit_rows(1000, 1) == 800
    tabm = CPU_FIT_COST["tabm"]
    assert trial_seconds("tabm", 1000, 5) == pytest.approx(5 * tabm.seconds(800))
    assert trial_seconds("tabm", 1000, 5, threads=2) == pytest.approx(5 * tabm.seconds(800, 2, 2))
    assert trial_seconds("xgboost", 1000, 5, n_classes=3) == pytest.approx(
        3 * trial_seconds("xgboost", 1000, 5)
    )


def test_the_measured_costs_grow_with_the_rows() -> None:
    for name, cost in CPU_FIT_COST.items():
        sizes = [n for n, _ in cost.points]
        seconds = [cost.seconds(n) for n in [*sizes, 4 * sizes[-1]]]
        assert sizes == sorted(sizes) and seconds == sorted(seconds), name
        assert 0.0 <= cost.parallel <= 1.0, name


def test_a_time_bounded_familys_first_trial_is_capped_by_its_fit_limit() -> None:
    tabm, xrfm = (trial_seconds(f, 8000, 5) for f in ("tabm", "xrfm"))
    assert "tabm" in TIME_BOUNDED and "xrfm" not in TIME_BOUNDED
    assert first_trial_seconds("tabm", 8000, 5, "cpu") == pytest.approx(tabm)
    assert first_trial_seconds("tabm", 8000, 5, "cpu", fit_limit_s=1.0) == pytest.approx(5.0)
    assert first_trial_seconds("tabm", 8000, 5, "cpu", fit_limit_s=1e6) == pytest.approx(tabm)
    assert first_trial_seconds("xrfm", 8000, 5, "cpu", fit_limit_s=1.0) == pytest.approx(xrfm)
    assert first_trial_seconds("tabm", 8000, 5, "cuda:0", fit_limit_s=1.0) is None
    assert fit_limit(60.0, 5) == pytest.approx(BUDGET_SHARE * 60.0 / 5)


@pytest.mark.parametrize("stretch", [0.5, 0.9 * BOUNDED_STRETCH])
def test_a_time_bounded_family_joins_a_budget_it_would_overrun_by_its_stretch(
    stretch: float,
) -> None:
    n_rows = 3000
    tabm = trial_seconds("tabm", n_rows, 5)
    budget = tabm / (stretch * BUDGET_SHARE)  # tabm's trial is `stretch` shares
    chosen = default_model_types(n_rows, 20, "cpu", False, budget)
    assert "tabm" in chosen
    over = [f for f in chosen if trial_seconds(f, n_rows, 5) > BUDGET_SHARE * budget]
    assert set(over) <= TIME_BOUNDED and (stretch <= 1.0 or "tabm" in over)


def test_beyond_its_share_or_stretch_a_family_stays_out() -> None:
    tabm, xrfm = (trial_seconds(f, 3000, 5) for f in ("tabm", "xrfm"))
    budget = tabm / (1.1 * BOUNDED_STRETCH * BUDGET_SHARE)
    assert "tabm" not in default_model_types(3000, 20, "cpu", False, budget)
    assert "xrfm" not in default_model_types(3000, 20, "cpu", False, xrfm / (1.1 * BUDGET_SHARE))
    assert "xrfm" in default_model_types(3000, 20, "cpu", False, xrfm / (0.9 * BUDGET_SHARE))


def test_a_regression_fit_costs_its_regression_factor_times_the_binary_one() -> None:
    forest = FitCost(((1000, 1.0), (4000, 8.0)), regression=3.0)
    assert forest.seconds(1000, n_classes=0) == pytest.approx(3.0)
    assert forest.seconds(1000, n_classes=2) == pytest.approx(1.0)
    assert forest.seconds(1000, n_classes=5) == pytest.approx(1.0)
    assert COST.seconds(1000, n_classes=0) == pytest.approx(1.0)


def test_a_regression_forest_is_planned_at_its_regression_cost() -> None:
    """bikeshare's shape at 60 s (6,916 rows, 5 folds, 2 threads): a regression random forest
    trial (~20 s measured, every feature per split) overruns its 15 s share and stays out; the
    same rows' binary one (~6 s) and the regression extra trees (~12 s) join."""
    shape = (6916, 17, "cpu", False, 60.0, 5)
    regression = default_model_types(*shape, n_classes=0, threads=2)
    binary = default_model_types(*shape, n_classes=2, threads=2)
    assert "randomforest" not in regression and "extratrees" in regression
    assert {"randomforest", "extratrees"} <= set(binary)
    assert trial_seconds("randomforest", 6916, 5, 0, 2) == pytest.approx(
        CPU_FIT_COST["randomforest"].regression * trial_seconds("randomforest", 6916, 5, 2, 2)
    )
