"""What a default trial of each family costs on a CPU, for planning a run's time.

Measured as one thread's CPU seconds (``benchmarks/family_costs.py``, results in
``benchmarks/results/family_costs.md``): one default fit of a family on ``n`` training rows takes
about ``overhead_s + per_row_s * n`` seconds (a K-fold trial is K such fits); on more threads a
fit takes less wall time, so the plan is conservative. The estimates only plan: which default
families a CPU run under a time budget tries (``default_model_types``), which are left out of
an unbounded CPU run (``choice.choose_model_types``), and whether the scheduler starts a row's
first trial (``search.schedule``); the clock still bounds every trial.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FitCost:
    """Seconds of one default fit on ``n`` rows: ``overhead_s + per_row_s * n``, measured on a
    binary task; ``per_class``: boosting grows one tree per class and round, so a task of
    ``K`` > 2 classes costs ``K`` times as much."""

    overhead_s: float
    per_row_s: float
    per_class: bool = False

    def seconds(self, n_rows: int, n_classes: int = 2) -> float:
        """Expected seconds of one default fit on ``n_rows`` training rows."""
        factor = n_classes if self.per_class and n_classes > 2 else 1
        return (self.overhead_s + self.per_row_s * n_rows) * factor


CPU_FIT_COST = {
    "xgboost": FitCost(0.05, 2e-5, per_class=True),
    "lightgbm": FitCost(0.05, 3.5e-5, per_class=True),
    "extratrees": FitCost(0.25, 1.7e-4),
    "randomforest": FitCost(0.25, 2.2e-4),
    "catboost": FitCost(0.1, 1.1e-3, per_class=True),
    "xrfm": FitCost(0.1, 3.5e-3),
    "tabm": FitCost(0.5, 3.5e-3),
    "tabicl": FitCost(2.0, 1e-2),
}
SLOWEST = FitCost(2.0, 0.2)
"""The cost assumed for a family without a measurement."""
GPU_FAMILIES = frozenset({"xgboost", "catboost", "tabm", "xrfm", "tabicl"})
"""Families that train on the GPU of a CUDA worker (the others train on its CPU)."""


def trial_seconds(family: str, n_rows: int, n_fits: int, n_classes: int = 2) -> float:
    """Expected CPU seconds of one default trial: ``n_fits`` fits on ``n_rows`` rows."""
    return n_fits * CPU_FIT_COST.get(family, SLOWEST).seconds(n_rows, n_classes)


def first_trial_seconds(
    family: str, n_rows: int, n_fits: int, device: str, n_classes: int = 2
) -> float | None:
    """Expected seconds of a row's first trial; None where it trains on a GPU (no
    measurement: the clock alone bounds it)."""
    if device.startswith("cuda") and family in GPU_FAMILIES:
        return None
    return trial_seconds(family, n_rows, n_fits, n_classes)


def cpu_search_seconds(
    family: str, n_rows: int, n_trials: int, n_fits: int = 5, n_classes: int = 2
) -> float:
    """Expected CPU seconds of ``n_trials`` default trials of ``n_fits`` fits each."""
    return trial_seconds(family, n_rows, n_fits, n_classes) * n_trials
