"""The search's time check, reachable from inside a family's training loop.

A trial under a time budget stops between folds (``study``); a single long fit (a holdout
split, slow params) would still run past the budget. So while a fold trains, the search
installs its check here and families that train in loops call ``check_time()`` every
iteration/epoch: it raises ``OutOfTime`` when the trial must stop, and is a no-op otherwise.

Under a time budget on a CPU that the planned search overruns (``families.limits``), the search
also sets a limit on one fit (``fit_limit_s``): the families whose training loop can stop early
and keep what it learned (``costs.TIME_BOUNDED``: TabM's epochs, catboost's iterations) stop
there, so that their trial fits its share of the budget. Such a fit says so
(``stopped_at_limit``), and the block it ran in records it (``FitWatch``), so that the run can
name the families whose fits were actually cut short, not only those that could be.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

_CHECK: ContextVar[Callable[[], None] | None] = ContextVar("tabstream_time_check", default=None)
_FIT_LIMIT: ContextVar[float | None] = ContextVar("tabstream_fit_limit", default=None)


@dataclass
class FitWatch:
    """What the fits inside one ``time_check`` block reported: ``cut``, one stopped at its
    time limit (keeping what it had learned) before its own stopping rule ended it."""

    cut: bool = False


_WATCH: ContextVar[FitWatch | None] = ContextVar("tabstream_fit_watch", default=None)


class OutOfTime(Exception):
    """The time budget ran out in the middle of a trial."""


@contextmanager
def time_check(
    check: Callable[[], None] | None, fit_limit: float | None = None
) -> Iterator[FitWatch]:
    """Install ``check`` (raises OutOfTime when due) and the seconds one fit may train
    (``fit_limit``; None: no limit) for the fits inside the block; yields what they report."""
    watch = FitWatch()
    token, limit_token = _CHECK.set(check), _FIT_LIMIT.set(fit_limit)
    watch_token = _WATCH.set(watch)
    try:
        yield watch
    finally:
        _CHECK.reset(token)
        _FIT_LIMIT.reset(limit_token)
        _WATCH.reset(watch_token)


def stopped_at_limit() -> None:
    """Called by a fit that stopped at its time limit, keeping what it learned (the block's
    ``FitWatch`` records it; no-op outside one)."""
    watch = _WATCH.get()
    if watch is not None:
        watch.cut = True


def fit_limit_s() -> float | None:
    """The wall seconds a fit started now may train before it stops early (None: no limit)."""
    return _FIT_LIMIT.get()


def check_time() -> None:
    """Raise OutOfTime when the running trial must stop; no-op outside a budgeted search."""
    check = _CHECK.get()
    if check is not None:
        check()


def has_time_check() -> bool:
    """Whether a time check is installed (families skip their callbacks otherwise)."""
    return _CHECK.get() is not None
