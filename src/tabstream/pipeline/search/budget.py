"""The search's time check, reachable from inside a family's training loop.

A trial under a time budget stops between folds (``study``); a single long fit (a holdout
split, slow params) would still run past the budget. So while a fold trains, the search
installs its check here and families that train in loops call ``check_time()`` every
iteration/epoch: it raises ``OutOfTime`` when the trial must stop, and is a no-op otherwise.

Under a time budget on a CPU that the planned search overruns (``families.limits``), the search
also sets a limit on one fit (``fit_limit_s``): the families whose training loop can stop early
and keep what it learned (``costs.TIME_BOUNDED``: TabM's epochs, catboost's iterations) stop
there, so that their trial fits its share of the budget.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_CHECK: ContextVar[Callable[[], None] | None] = ContextVar("tabstream_time_check", default=None)
_FIT_LIMIT: ContextVar[float | None] = ContextVar("tabstream_fit_limit", default=None)


class OutOfTime(Exception):
    """The time budget ran out in the middle of a trial."""


@contextmanager
def time_check(check: Callable[[], None] | None, fit_limit: float | None = None) -> Iterator[None]:
    """Install ``check`` (raises OutOfTime when due) and the seconds one fit may train
    (``fit_limit``; None: no limit) for the fits inside the block."""
    token, limit_token = _CHECK.set(check), _FIT_LIMIT.set(fit_limit)
    try:
        yield
    finally:
        _CHECK.reset(token)
        _FIT_LIMIT.reset(limit_token)


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
