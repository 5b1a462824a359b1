"""What a default trial of each family costs on a CPU, for planning a run's time.

Measured as wall seconds of one default fit (``benchmarks/family_costs.py``, results in
``benchmarks/results/family_costs.md``) at several training sizes on one and two threads: a
fit's seconds on ``n`` rows are interpolated between the sizes (``FitCost``), and a fit on
``t`` threads runs its parallel share ``t`` times faster (Amdahl's law). A K-fold trial is K
fits on ``(K - 1) / K`` of the rows. The estimates only plan: which default families a CPU run
under a time budget tries (``default_model_types``), which are left out of an unbounded CPU run
(``choice.choose_model_types``), and whether the scheduler starts a row's first trial
(``search.schedule``); the clock still bounds every trial.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tabstream.pipeline.tasks.splits import HOLDOUT_FRACTION


@dataclass(frozen=True)
class FitCost:
    """Wall seconds of one default fit, measured on a binary task: ``points`` are
    ``(training rows, seconds on one thread)`` at increasing sizes, interpolated linearly in
    log-log space and extended past either end along the nearest segment (a fit's cost grows
    like a power of the rows, steeper at the top for most families); ``parallel`` is the share of
    the fit that runs in parallel (Amdahl's law: ``t`` threads divide that share by ``t``);
    ``per_class``: boosting grows one tree per class and round, so a task of ``K`` > 2 classes
    costs ``K`` times as much; ``regression``: a regression fit (``n_classes`` 0) costs this many
    times the binary one."""

    points: tuple[tuple[int, float], ...]
    parallel: float = 0.0
    per_class: bool = False
    regression: float = 1.0

    def seconds(self, n_rows: int, n_classes: int = 2, threads: int = 1) -> float:
        """Expected wall seconds of one default fit on ``n_rows`` training rows of a task with
        ``n_classes`` classes (0: regression)."""
        if n_classes == 0:
            factor = self.regression
        else:
            factor = n_classes if self.per_class and n_classes > 2 else 1.0
        amdahl = (1.0 - self.parallel) + self.parallel / max(1, threads)
        return _loglog(self.points, max(1, n_rows)) * factor * amdahl


def _loglog(points: tuple[tuple[int, float], ...], n: int) -> float:
    """``points`` interpolated at ``n`` in log-log space (one point: proportional to ``n``)."""
    if len(points) == 1:
        return points[0][1] * n / points[0][0]
    logs = np.log(np.asarray(points, dtype=float))
    i = int(np.clip(np.searchsorted(logs[:, 0], math.log(n)) - 1, 0, len(points) - 2))
    (x0, y0), (x1, y1) = logs[i], logs[i + 1]
    return math.exp(y0 + (y1 - y0) * (math.log(n) - x0) / (x1 - x0))


CPU_FIT_COST = {
    "xgboost": FitCost(
        ((500, 0.033), (2000, 0.099), (8000, 0.31), (32000, 1.676)),
        0.82,
        per_class=True,
        regression=2.6,
    ),
    "lightgbm": FitCost(
        ((500, 0.025), (2000, 0.094), (8000, 0.339), (32000, 1.489)),
        0.71,
        per_class=True,
        regression=2.6,
    ),
    "extratrees": FitCost(
        ((500, 0.505), (2000, 0.95), (8000, 2.516), (32000, 5.639)), 0.92, regression=1.5
    ),
    "randomforest": FitCost(
        ((500, 0.428), (2000, 0.878), (8000, 2.375), (32000, 8.426)), 0.77, regression=3.3
    ),
    "catboost": FitCost(
        ((500, 0.992), (2000, 1.812), (8000, 9.112), (32000, 37.896)), 0.88, per_class=True
    ),
    "xrfm": FitCost(((500, 0.03), (2000, 1.021), (8000, 28.165)), 0.91),
    "tabm": FitCost(((500, 2.931), (2000, 2.931), (8000, 14.351)), 0.61),
    "tabicl": FitCost(((1000, 12.0), (8000, 82.0))),
}
"""Measured on 2 cores (``benchmarks/results/family_costs.md``); tabicl's is a guess (no
weights here to measure it). ``regression`` is the median, over three regression datasets, of
a default regression fit's seconds over adult's binary one on as many rows
(``benchmarks/results/regression_costs.md``: boosting runs more rounds before early stopping on a
continuous target, the forests try every feature per split); catboost's ratios spread from 0.6
to 3.1 around a median of 0.8, so it plans regression at its binary cost."""
SLOWEST = FitCost(((1000, 200.0), (8000, 1600.0)))
"""The cost assumed for a family without a measurement."""
TIME_BOUNDED = frozenset({"tabm", "catboost"})
"""Families whose fit stops at the search's per-fit limit under a time budget, keeping what it
learned (``search.budget.fit_limit_s``: TabM's epochs, catboost's iterations)."""
GPU_FAMILIES = frozenset({"xgboost", "catboost", "tabm", "xrfm", "tabicl"})
"""Families that train on the GPU of a CUDA worker (the others train on its CPU)."""


def trial_seconds(
    family: str, n_rows: int, n_fits: int, n_classes: int = 2, threads: int = 1
) -> float:
    """Expected wall seconds of one default trial on a CPU over ``n_rows`` rows: ``n_fits``
    fits (K folds, or 1 for a holdout) on their training rows, each on ``threads`` threads."""
    cost = CPU_FIT_COST.get(family, SLOWEST)
    return n_fits * cost.seconds(fit_rows(n_rows, n_fits), n_classes, threads)


def fit_rows(n_rows: int, n_fits: int) -> int:
    """Training rows of one fit: ``(K - 1) / K`` of the rows for K folds, else a holdout's."""
    share = 1.0 - 1.0 / n_fits if n_fits > 1 else 1.0 - HOLDOUT_FRACTION
    return max(1, round(n_rows * share))


def first_trial_seconds(
    family: str,
    n_rows: int,
    n_fits: int,
    device: str,
    n_classes: int = 2,
    threads: int = 1,
    fit_limit_s: float | None = None,
) -> float | None:
    """Expected seconds of a row's first trial, at most ``n_fits`` x ``fit_limit_s`` for a
    ``TIME_BOUNDED`` family; None where it trains on a GPU (no measurement: the clock alone
    bounds it)."""
    if device.startswith("cuda") and family in GPU_FAMILIES:
        return None
    expected = trial_seconds(family, n_rows, n_fits, n_classes, threads)
    if fit_limit_s is not None and family in TIME_BOUNDED:
        return min(expected, n_fits * fit_limit_s)
    return expected


def cpu_search_seconds(
    family: str, n_rows: int, n_trials: int, n_fits: int = 5, n_classes: int = 2, threads: int = 1
) -> float:
    """Expected wall seconds of ``n_trials`` default trials of ``n_fits`` fits each."""
    return trial_seconds(family, n_rows, n_fits, n_classes, threads) * n_trials
