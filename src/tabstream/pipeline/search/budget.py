"""The search's time check, reachable from inside a family's training loop.

A trial under a time budget stops between folds (``study``); a single long fit (a holdout
split, slow params) would still run past the budget. So while a fold trains, the search
installs its check here and families that train in loops call ``check_time()`` every
iteration/epoch: it raises ``OutOfTime`` when the trial must stop, and is a no-op otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_CHECK: ContextVar[Callable[[], None] | None] = ContextVar("tabstream_time_check", default=None)


class OutOfTime(Exception):
    """The time budget ran out in the middle of a trial."""


@contextmanager
def time_check(check: Callable[[], None] | None) -> Iterator[None]:
    """Install ``check`` (raises OutOfTime when due) for the fits inside the block."""
    token = _CHECK.set(check)
    try:
        yield
    finally:
        _CHECK.reset(token)


def check_time() -> None:
    """Raise OutOfTime when the running trial must stop; no-op outside a budgeted search."""
    check = _CHECK.get()
    if check is not None:
        check()


def has_time_check() -> bool:
    """Whether a time check is installed (families skip their callbacks otherwise)."""
    return _CHECK.get() is not None
