"""The time budget's scheduler: which row runs the next trial, until the search deadline.

1. **Starting points first.** Round by round, every row runs its defaults, then its portfolio
   configurations one at a time (cheap and strong: a fixed good configuration of each family
   beats a sampled one when there is time for few trials), in the rows' order. A row whose
   fits are expected to be cut short at the per-fit limit starts ``CUT_SHORT_DELAY`` rounds
   late, after the converging rows' first portfolio configurations.
2. **Then HPO where it pays.** Each next trial goes to the row with the best recent marginal
   gain per second: how much its best loss fell over its last ``GAIN_WINDOW`` trials, divided
   by the seconds they took; a fall under ``MIN_RELATIVE_GAIN`` of the loss is noise and counts
   as none (else a cheap row's tiny CV wiggles would win every comparison and take the whole
   budget). When no row gains, the time is shared: the next trial goes to the row with the
   fewest search seconds among those whose best loss is within ``NEAR_BEST`` of the best row's
   (diverse strong rows feed the ensemble; a clearly weaker row gets no more time).
   Pareto sweeps (their rows' objectives are not comparable) go round robin instead.
3. **Prune when time is short.** While the rows' remaining trials are expected to take more
   than the time left (the budget binds), a trial stops its remaining folds when its first
   folds cannot beat its row's best (``pruning``).
4. **Never start a trial that cannot end inside the budget.** A row's next trial must be
   expected to end before the search deadline: by the median of its trials so far, or, for
   its first, by ``first_trial_s`` (an estimate from the family's measured cost; None:
   unknown, it starts and the deadline stops it between folds or inside its training loop).

Each row's own sequence of trials does not depend on the interleaving (its sampler is seeded
and sees only its own study) and nothing is pruned while the budget does not bind, so such a
run gives the same trials and leaderboard as a run without a budget. A budget the planned
search fits in (``families.limits.plan_binds``) sets no per-fit limit (``budget.fit_limit_s``)
either; one it overruns does, and that changes the TabM and catboost fits that reach it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np

from tabstream.pipeline.search.rows import Row, RowResult, SearchContext, primary_loss
from tabstream.pipeline.search.study import RowSearch

GAIN_WINDOW = 3
"""Trials over which a row's recent gain in best loss is measured."""
MIN_RELATIVE_GAIN = 1e-3
"""A fall of the best loss smaller than this share of it is noise, not a gain."""
NEAR_BEST = 0.05
"""When no row gains, rows whose best loss is within this share of the best row's share the
time (the one with the fewest search seconds runs next)."""
CUT_SHORT_DELAY = 1
"""Rounds of starting points a row whose fits the budget will cut short waits: a fit stopped
(or hastened) at the per-fit limit is weaker than another configuration of a family that
converges in time (bikeshare at 60 s: catboost's cut default scored CV 30.4, xgboost's first
portfolio configuration 28.7 in a third of the time)."""
FirstTrialEstimate = Callable[[str], float | None]
"""family -> expected seconds of its first (default) trial, None when unknown."""


def schedule(
    ctx: SearchContext, rows: Sequence[Row], first_trial_s: FirstTrialEstimate
) -> tuple[list[RowResult], list[str]]:
    """Run the rows' trials interleaved until ``ctx.search_deadline`` (see the module
    docstring); the rows' results and notes naming rows that never started and why."""
    assert ctx.search_deadline is not None
    searches = [RowSearch(ctx, row) for row in rows]
    _starting_points(searches, first_trial_s)
    pareto = any(row.weights is not None for row in rows)
    while (search := _next(searches, first_trial_s, pareto)) is not None:
        ctx.prune_folds = _budget_binds(searches, first_trial_s)
        search.step()
    ctx.prune_folds = False
    notes = _not_started(searches, first_trial_s)
    return [s.close() for s in searches], notes


def _starting_points(searches: Sequence[RowSearch], first_trial_s: FirstTrialEstimate) -> None:
    """Round ``r`` runs the ``r``-th fixed configuration (defaults, then portfolio) of every
    row that has one left, in the rows' order; a row whose fits the budget will cut short
    (``ctx.cut_short``) runs its ``k``-th in round ``k + CUT_SHORT_DELAY``."""
    order = sorted(
        (k + (CUT_SHORT_DELAY if s.row.family in s.ctx.cut_short else 0), i, k)
        for i, s in enumerate(searches)
        for k in range(s.n_starting_points)
    )
    for _, i, k in order:
        search = searches[i]
        if search.open and search.done == k and _fits(search, first_trial_s):
            search.ctx.prune_folds = _budget_binds(searches, first_trial_s)
            search.step()


def _next(
    searches: Sequence[RowSearch], first_trial_s: FirstTrialEstimate, pareto: bool
) -> RowSearch | None:
    """The row that runs the next trial, None when none may start one."""
    ready = [s for s in searches if s.open and _fits(s, first_trial_s)]
    if not ready:
        return None
    if pareto:
        return min(ready, key=lambda s: (s.done, s.row.index))
    gainer = max(ready, key=lambda s: (gain_per_second(s), -_best_loss(s), -s.row.index))
    if gain_per_second(gainer) > 0.0:
        return gainer
    return _least_time_near_best(ready)


def _least_time_near_best(ready: Sequence[RowSearch]) -> RowSearch:
    """Among rows within ``NEAR_BEST`` of the best loss, the one with the fewest search
    seconds so far."""
    best = min(_best_loss(s) for s in ready)
    near = [s for s in ready if _best_loss(s) <= best + NEAR_BEST * abs(best)]
    return min(near, key=lambda s: (sum(s.durations), _best_loss(s), s.row.index))


def _fits(search: RowSearch, first_trial_s: FirstTrialEstimate) -> bool:
    """Whether the row's next trial is expected to end before the search deadline."""
    deadline = search.ctx.search_deadline
    assert deadline is not None
    now = time.monotonic()
    if now >= deadline:
        return False
    if search.durations:
        return now + float(np.median(search.durations)) <= deadline
    expected = first_trial_s(search.row.family)
    return expected is None or now + expected <= deadline


def _budget_binds(searches: Sequence[RowSearch], first_trial_s: FirstTrialEstimate) -> bool:
    """Whether the open rows' remaining trials are expected to take longer than the time left
    (each at the median of its row's trials, or its first-trial estimate)."""
    deadline = searches[0].ctx.search_deadline if searches else None
    assert deadline is not None
    needed = 0.0
    for s in searches:
        if s.open:
            each = float(np.median(s.durations)) if s.durations else first_trial_s(s.row.family)
            needed += (each or 0.0) * (s.ctx.n_trials - s.done)
    return needed > deadline - time.monotonic()


def gain_per_second(search: RowSearch) -> float:
    """The fall of the row's best loss over its last ``GAIN_WINDOW`` trials per second they
    took (inf for a row with a single trial: nothing is known yet; 0 for a fall under
    ``MIN_RELATIVE_GAIN`` of the loss)."""
    bests = _running_best(search)
    if len(bests) < 2:
        return math.inf
    base = max(0, len(bests) - 1 - GAIN_WINDOW)
    seconds = sum(search.durations[base + 1 :])
    gain = bests[base] - bests[-1]
    if not math.isfinite(gain):
        return math.inf if bests[-1] < math.inf else 0.0
    if gain < MIN_RELATIVE_GAIN * abs(bests[base]):
        return 0.0
    return gain / max(seconds, 1e-3)


def _running_best(search: RowSearch) -> list[float]:
    """The row's best loss after each of its trials (failed and pruned ones count as
    trials that found nothing better)."""
    losses = {t.number: primary_loss(search.ctx, t.metrics) for t in search.result.trials}
    best, out = math.inf, []
    for number in search.trial_numbers:
        best = min(best, losses.get(number, math.inf))
        out.append(best)
    return out


def _best_loss(search: RowSearch) -> float:
    trials = search.result.trials
    return min((primary_loss(search.ctx, t.metrics) for t in trials), default=math.inf)


def _not_started(searches: Sequence[RowSearch], first_trial_s: FirstTrialEstimate) -> list[str]:
    notes = []
    for s in searches:
        if s.family is not None and s.done == 0 and not s.result.trials:
            expected = first_trial_s(s.row.family)
            why = f"its first trial was estimated at ~{expected:.0f} s" if expected else ""
            notes.append(
                f"row {s.row.index} ({s.row.family}) did not start: the time budget ran out"
                + (f" ({why})" if why else "")
            )
    return notes


def budget_summary(results: Sequence[RowResult], n_trials: int) -> str:
    """Per row: trials run of ``n_trials``, and how many were pruned after their first folds
    (the job's notes name every family the budget cut short)."""
    parts = []
    for r in results:
        ran = len(r.trials) + r.n_failed + r.n_pruned
        part = f"{r.row.family} {ran}/{n_trials}"
        if r.n_pruned:
            part += f" ({r.n_pruned} pruned after their first folds)"
        parts.append(part)
    return "trials per row: " + ", ".join(parts)
