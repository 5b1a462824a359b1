"""The time budget's scheduler (``search.schedule``) and pruning across folds
(``search.pruning``): starting points first, then trials where the gain per second is best,
no trial started that cannot end in time, and trials cut after their first folds only while
the budget binds."""

from __future__ import annotations

import math
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import optuna
import pytest

from tabstream.pipeline.families import Families
from tabstream.pipeline.search import pruning
from tabstream.pipeline.search import schedule as sched
from tabstream.pipeline.search.pruning import FOLD_PRUNED_ATTR, FoldPruned, prune_check
from tabstream.pipeline.search.rows import Row, RowResult, TrialRecord
from tabstream.pipeline.search.scoring import get_metric
from tabstream.pipeline.search.study import _counts_as_done
from tabstream.pipeline.types import ProblemSpec
from tests.unit.pipeline_support import of_type, request, run_collect, store_with

RMSE = get_metric("rmse")


def _ctx(deadline_in_s: float = 100.0, n_trials: int = 50, n_folds: int = 5) -> Any:
    return SimpleNamespace(
        search_deadline=time.monotonic() + deadline_in_s,
        n_trials=n_trials,
        metrics=(RMSE,),
        splits=[None] * n_folds,
        prune_folds=False,
    )


def _record(row: int, number: int, loss: float, folds: list[float] | None = None) -> TrialRecord:
    per_fold = [{"rmse": v} for v in (folds or [loss] * 5)]
    return TrialRecord(row, number, {}, {"rmse": loss}, per_fold, np.zeros(1))


def _search(ctx: Any, index: int, losses: list[float], seconds: list[float]) -> Any:
    """A RowSearch stand-in whose trials had ``losses`` (NaN: failed) and took ``seconds``."""
    result = RowResult(Row(index, f"family{index}"))
    result.trials = [_record(index, n, v) for n, v in enumerate(losses) if not math.isnan(v)]
    return SimpleNamespace(
        ctx=ctx,
        row=result.row,
        result=result,
        durations=list(seconds),
        trial_numbers=list(range(len(losses))),
        done=len(losses),
        open=len(losses) < ctx.n_trials,
        family=object(),
    )


def _never(family: str) -> float | None:
    return None


def test_gain_per_second_measures_the_recent_fall_of_the_best_loss() -> None:
    ctx = _ctx()
    assert sched.gain_per_second(_search(ctx, 0, [5.0], [1.0])) == math.inf
    # best 5 -> 4 -> 4 -> 3.5 -> 3.5: the last 3 trials took 6 s and lowered it by 0.5
    steady = _search(ctx, 0, [5.0, 4.0, 4.0, 3.5, 3.5], [1.0, 1.0, 2.0, 2.0, 2.0])
    assert sched.gain_per_second(steady) == pytest.approx(0.5 / 6.0)
    failed_then_good = _search(ctx, 0, [math.nan, 2.0], [1.0, 4.0])
    assert sched.gain_per_second(failed_then_good) == math.inf
    nothing = _search(ctx, 0, [math.nan, math.nan], [1.0, 1.0])
    assert sched.gain_per_second(nothing) == 0.0


def test_the_next_trial_goes_to_the_row_gaining_most_per_second() -> None:
    ctx = _ctx()
    slow_gainer = _search(ctx, 0, [5.0, 4.0, 3.0, 2.0], [10.0, 10.0, 10.0, 10.0])  # 0.1 / s
    fast_gainer = _search(ctx, 1, [5.0, 4.9, 4.8, 4.7], [0.1, 0.1, 0.1, 0.1])  # 1.0 / s
    assert sched._next([slow_gainer, fast_gainer], _never, pareto=False) is fast_gainer
    # no row gains: the one with the lowest best loss gets the time
    flat_good = _search(ctx, 0, [2.0, 2.0, 2.0, 2.0], [1.0] * 4)
    flat_bad = _search(ctx, 1, [3.0, 3.0, 3.0, 3.0], [1.0] * 4)
    assert sched._next([flat_bad, flat_good], _never, pareto=False) is flat_good
    # a Pareto sweep goes round robin: the row with the fewest trials
    assert sched._next([slow_gainer, flat_bad, flat_good], _never, pareto=True) is slow_gainer


def test_a_fall_of_the_best_loss_below_the_noise_share_is_no_gain() -> None:
    ctx = _ctx()
    wiggle = _search(ctx, 0, [0.2, 0.19999, 0.19998, 0.19997], [0.1] * 4)
    assert sched.gain_per_second(wiggle) == 0.0
    real = _search(ctx, 0, [0.2, 0.199, 0.198, 0.197], [0.1] * 4)
    assert sched.gain_per_second(real) == pytest.approx(0.003 / 0.3)


def test_without_gains_rows_near_the_best_share_the_time() -> None:
    ctx = _ctx(n_trials=1000)
    # a cheap row wiggling at the best loss (300 trials, 30 s) vs a near one with 12 s spent
    cheap_best = _search(ctx, 0, [0.2] + [0.19999] * 299, [0.1] * 300)
    near = _search(ctx, 1, [0.205] * 4, [3.0] * 4)
    far = _search(ctx, 2, [0.25, 0.25], [0.5, 0.5])  # 25 % worse: no more time
    assert sched._next([cheap_best, near, far], _never, pareto=False) is near
    spent = _search(ctx, 1, [0.205] * 20, [3.0] * 20)  # 60 s spent: the cheap row's turn
    assert sched._next([cheap_best, spent, far], _never, pareto=False) is cheap_best
    # a row that gains still goes first, whatever its time
    gaining = _search(ctx, 1, [0.25, 0.22, 0.21], [20.0] * 3)
    assert sched._next([cheap_best, gaining, far], _never, pareto=False) is gaining


def test_no_trial_starts_that_is_not_expected_to_end_in_time() -> None:
    ctx = _ctx(deadline_in_s=10.0)
    slow = _search(ctx, 0, [5.0, 4.0], [30.0, 20.0])
    quick = _search(ctx, 1, [5.0, 5.0], [1.0, 1.0])
    assert sched._next([slow, quick], _never, pareto=False) is quick
    assert sched._next([slow], _never, pareto=False) is None
    fresh = _search(ctx, 2, [], [])
    assert sched._fits(fresh, _never)  # no estimate: it starts, the clock bounds it
    assert sched._fits(fresh, lambda f: 5.0)
    assert not sched._fits(fresh, lambda f: 50.0)
    assert sched._not_started([fresh], lambda f: 50.0) == [
        "row 2 (family2) did not start: the time budget ran out "
        "(its first trial was estimated at ~50 s)"
    ]


def test_the_budget_binds_when_the_remaining_trials_exceed_the_time_left() -> None:
    ctx = _ctx(deadline_in_s=100.0, n_trials=10)
    row = _search(ctx, 0, [5.0, 4.0], [1.0, 1.0])  # 8 trials x 1 s left
    assert not sched._budget_binds([row], _never)
    row.durations = [20.0, 20.0]  # 8 x 20 s > 100 s
    assert sched._budget_binds([row], _never)
    fresh = _search(ctx, 1, [], [])
    assert sched._budget_binds([fresh], lambda f: 11.0)  # 10 first trials of 11 s
    assert not sched._budget_binds([fresh], lambda f: 9.0)


def _pruning_ctx() -> Any:
    return SimpleNamespace(metrics=(RMSE,), splits=[None] * 5)


def _result(weights: tuple[float, ...] | None = None) -> RowResult:
    result = RowResult(Row(0, "xgboost", weights))
    best = [1.0, 1.2, 0.8, 1.0, 1.0]
    # another trial, 0.2 behind on average; its differences vary by 0.1 from fold to fold
    other = [1.3, 1.3, 1.1, 1.2, 1.1]
    result.trials = [_record(0, 0, 1.0, best), _record(0, 1, 1.2, other)]
    return result


def test_a_trial_clearly_behind_the_rows_best_on_its_first_folds_is_pruned() -> None:
    ctx = _pruning_ctx()
    noise = float(np.std([0.3, 0.1, 0.3, 0.2, 0.1], ddof=1))  # 0.1
    with pytest.raises(FoldPruned, match="after 1 folds"):
        prune_check(ctx, _result(), [1.0 + 2.0 * noise + 0.01])
    prune_check(ctx, _result(), [1.0 + 2.0 * noise - 0.01])  # within 2 standard errors
    with pytest.raises(FoldPruned, match="after 2 folds"):
        prune_check(ctx, _result(), [1.0 + 0.15, 1.2 + 0.15])  # 0.15 > 2 x 0.1 / sqrt(2)
    prune_check(ctx, _result(), [0.5, 0.6])  # ahead
    prune_check(ctx, _result(), [9.0] * 5)  # the last fold: the trial completes
    one_trial = RowResult(Row(0, "xgboost"))
    one_trial.trials = _result().trials[:1]
    prune_check(ctx, one_trial, [9.0])  # no noise estimate yet
    prune_check(ctx, _result(weights=(0.5, 0.5)), [9.0])  # a Pareto row


def test_fold_pruned_trials_count_as_done_and_time_stopped_ones_do_not() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    pruned, stopped = study.ask(), study.ask()
    pruned.set_user_attr(FOLD_PRUNED_ATTR, 2)
    study.tell(pruned, state=optuna.trial.TrialState.PRUNED)
    study.tell(stopped, state=optuna.trial.TrialState.PRUNED)
    done = [_counts_as_done(t) for t in study.trials]
    assert done == [True, False]


def test_starting_points_run_round_by_round_before_any_sampled_trial(tmp_path: Path) -> None:
    store, ref = store_with(tmp_path, "credit_g", 300)
    req = request("credit_g", model_types=["xgboost", "randomforest"], n_trials=5)
    _, events = run_collect(store, ref, req, time_budget_s=600.0)
    order = [(t.row, t.trial) for t in of_type(events, "TrialCompleted")]
    spec = ProblemSpec("binclass", "y", ("bad", "good"))
    rounds = min(1 + len(Families()[f].portfolio(spec)) for f in ("xgboost", "randomforest"))
    expected = [(row, k) for k in range(rounds) for row in (0, 1)]
    assert order[: 2 * rounds] == expected
    assert sorted(order) == [(row, k) for row in (0, 1) for k in range(5)]


def test_a_binding_budget_prunes_and_names_it_in_the_notes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sched, "_budget_binds", lambda searches, first_trial_s: True)
    monkeypatch.setattr(pruning, "PRUNE_Z", 0.5)  # abalone's random trials are close
    store, ref = store_with(tmp_path, "abalone", 400)
    req = request("abalone", n_trials=12, n_splits=5, strategy="random")
    result, events = run_collect(store, ref, req, time_budget_s=3600.0)
    (row,) = of_type(events, "RowCompleted")
    (summary,) = [n for n in result.notes if n.startswith("time budget")]
    pruned = int(summary.split("(")[1].split(" pruned")[0])
    assert "trials per row: xgboost 12/12 (" in summary and pruned > 0
    assert row.n_trials == len(of_type(events, "TrialCompleted")) == 12 - pruned
    # the same run without a binding budget prunes nothing
    monkeypatch.undo()
    plain, plain_events = run_collect(store, ref, req, time_budget_s=3600.0)
    assert len(of_type(plain_events, "TrialCompleted")) == 12
    assert not any("pruned" in n for n in plain.notes)


class _Starter:
    """A RowSearch stand-in with three starting points that logs ``(row, trial)`` per step."""

    def __init__(self, ctx: Any, index: int, ran: list[tuple[int, int]]) -> None:
        self.ctx, self.row, self.ran = ctx, Row(index, f"family{index}"), ran
        self.done, self.n_starting_points, self.durations = 0, 3, []

    @property
    def open(self) -> bool:
        return self.done < self.ctx.n_trials

    def step(self) -> None:
        self.ran.append((self.row.index, self.done))
        self.done += 1


def test_a_row_the_budget_will_cut_short_starts_its_starting_points_a_round_late() -> None:
    ctx = _ctx()
    ctx.cut_short = frozenset({"family1"})
    ran: list[tuple[int, int]] = []
    sched._starting_points([_Starter(ctx, i, ran) for i in range(3)], _never)
    assert sched.CUT_SHORT_DELAY == 1
    assert ran == [(0, 0), (2, 0), (0, 1), (1, 0), (2, 1), (0, 2), (1, 1), (2, 2), (1, 2)]
