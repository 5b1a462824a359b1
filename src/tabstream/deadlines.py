"""Coarse deadlines for many futures: one periodic check instead of one timer per future.

``asyncio.timeout`` costs a timer handle, a heap push and a cancellation per call; on the
submission path (a publish ack and a projection wait per request) that was a measurable share
of the API's CPU. Here, watching a future costs one list append: futures watched with the same
timeout since the last check share the deadline that check sets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from itertools import filterfalse
from operator import methodcaller
from typing import Any

CHECK_S = 0.1
_done = methodcaller("done")


class Deadlines:
    """Fails watched futures that are not done in time with ``make_error()``.

    A future fails between ``timeout_s`` and ``timeout_s + 2 * check_s`` after ``watch``
    (never early); futures done meanwhile are let go at the next check, and the timer stops
    when nothing is left to watch.
    """

    def __init__(self, make_error: Callable[[], BaseException], check_s: float = CHECK_S) -> None:
        self._make_error = make_error
        self._check_s = check_s
        self._new: dict[float, list[asyncio.Future[Any]]] = {}
        self._pending: list[tuple[float, list[asyncio.Future[Any]]]] = []
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, future: asyncio.Future[Any], timeout_s: float) -> None:
        """Fail ``future`` unless it is done within ``timeout_s`` (see the class)."""
        new = self._new.get(timeout_s)
        if new is None:
            new = self._new[timeout_s] = []
        new.append(future)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._check_s, self._check)

    @property
    def watched(self) -> int:
        """Futures watched and not yet let go (some may be done since the last check)."""
        return sum(map(len, self._new.values())) + sum(len(f) for _, f in self._pending)

    def _check(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        groups = [*self._pending, *((now + t, new) for t, new in self._new.items())]
        self._new, self._pending = {}, []
        for deadline, futures in groups:
            waiting = list(filterfalse(_done, futures))
            if deadline <= now:
                for future in waiting:
                    future.set_exception(self._make_error())
            elif waiting:
                self._pending.append((deadline, waiting))
        self._timer = loop.call_later(self._check_s, self._check) if self._pending else None
