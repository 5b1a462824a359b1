"""When a CPU time budget limits a fit, and how much a time-bounded family's fits must hasten.

Under a time budget on a CPU that the planned search would overrun (``plan_binds``: every row's
``n_trials`` default trials, at their measured costs), each fit of a ``costs.TIME_BOUNDED``
family stops at the search's per-fit limit (``fit_limit``); when the plan fits, no fit is
limited, so the run trains as it would without a budget. A boosting fit cut at a fraction of
the rounds it needs ends undertrained; a family that ``Hastens`` trains its fixed
configurations (defaults, portfolio) faster instead, by the factor its default fit is expected
to outlast the seconds a hastened fit aims at, ``HASTE_HEADROOM`` below the limit (``slowdowns``;
planned from the measured costs, so the same request, data and budget give the same params).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from tabstream.pipeline.families import BUDGET_SHARE
from tabstream.pipeline.families.costs import TIME_BOUNDED, trial_seconds
from tabstream.pipeline.types import Family, Hastens

HASTE_HEADROOM = 1.5
"""A hastened fit aims to end in the per-fit limit over this. The planned costs are one earlier
measurement on a dataset's first rows, and fits run longer than planned (catboost's default on
31,258 of adult's rows, 2 threads, measured again: 27.8 s on the first rows, 32.2 s on shuffled
rows as a fold's are, against 21 s planned), and a fit cut short at the limit scores
worse than one at a larger rate that converges (a standalone 5-fold run on one outer split of
adult: learning rate 0.1 converged in ~19 s a fit, OOF AUC 0.92966, test 0.92934; 0.07 cut at
15 s, 0.92927 and 0.92872). Aimed at the limit itself, adult's hastened fits at 300 s were cut
on 5 of 5 folds; with this headroom, on 2-4."""


def plan_binds(
    names: Sequence[str],
    n_rows: int,
    n_fits: int,
    n_classes: int,
    threads: int,
    n_trials: int,
    search_s: float,
) -> bool:
    """Whether ``n_trials`` default trials of each of ``names`` (``n_fits`` fits on ``n_rows``
    rows, ``threads`` each) are expected to take more than ``search_s`` seconds."""
    one_each = sum(trial_seconds(f, n_rows, n_fits, n_classes, threads) for f in names)
    return one_each * n_trials > search_s


def slowdowns(
    families: Mapping[str, Family],
    names: Iterable[str],
    n_rows: int,
    n_fits: int,
    n_classes: int,
    threads: int,
    limit_s: float,
) -> dict[str, float]:
    """For each of ``names`` that is time-bounded and ``Hastens``: the expected seconds of its
    default fit (``n_fits`` fits per trial on ``n_rows`` rows) over the seconds a hastened fit
    aims at (``haste_target``)."""
    out = {}
    for name in sorted(set(names) & TIME_BOUNDED):
        if isinstance(families[name], Hastens):
            fit_s = trial_seconds(name, n_rows, n_fits, n_classes, threads) / n_fits
            out[name] = fit_s / haste_target(limit_s)
    return out


def haste_target(limit_s: float) -> float:
    """The seconds a hastened fit aims at under the per-fit ``limit_s``."""
    return limit_s / HASTE_HEADROOM


def cut_short(
    names: Iterable[str], n_rows: int, n_fits: int, n_classes: int, threads: int, limit_s: float
) -> frozenset[str]:
    """The time-bounded families of ``names`` whose default fit (``n_fits`` fits per trial on
    ``n_rows`` rows) is expected to outlast the per-fit ``limit_s``: their fits stop there or
    train hastened, either way weaker than a fit that converges."""
    return frozenset(
        name
        for name in set(names) & TIME_BOUNDED
        if trial_seconds(name, n_rows, n_fits, n_classes, threads) / n_fits > limit_s
    )


def bounded_note(budget: float, names: Iterable[str], limit_s: float) -> list[str]:
    """The note naming the families of ``names`` whose fits stop at the per-fit limit."""
    bounded = sorted(set(names) & TIME_BOUNDED)
    if not bounded:
        return []
    return [
        f"time budget {budget:g} s: each fit of {', '.join(bounded)} stops after at most "
        f"{limit_s:.1f} s ({BUDGET_SHARE:.0%} of the budget over the trial's fits), keeping "
        "what it learned so far"
    ]


def cut_note(limited: Mapping[str, int], cut: Mapping[str, int], limit_s: float) -> list[str]:
    """The note naming the families whose search fits were cut short at the per-fit limit
    (``cut`` of their ``limited`` fits each; none when no fit was)."""
    said = ", ".join(f"{name} {cut[name]} of {limited[name]}" for name in sorted(cut) if cut[name])
    if not said:
        return []
    return [
        f"fits cut short at the {limit_s:.1f} s per-fit limit (keeping what they had learned): "
        f"{said}"
    ]


def hastened_note(budget: float, slowdowns: Mapping[str, float], limit_s: float) -> list[str]:
    """The note naming the families whose fixed configurations train hastened."""
    over = {name: s for name, s in sorted(slowdowns.items()) if s > 1.0}
    if not over:
        return []
    said = ", ".join(f"{name} ({s:.1f} x)" for name, s in over.items())
    return [
        f"time budget {budget:g} s: a default fit of {said} is expected to outlast the "
        f"{haste_target(limit_s):.1f} s a fit aims at ({HASTE_HEADROOM:g} x under the per-fit "
        "limit), so its default and portfolio configurations train hastened (a larger learning "
        "rate) to converge instead of cut short"
    ]
