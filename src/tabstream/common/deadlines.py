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


class TaskDeadlines:
    """``asyncio.timeout`` for many concurrent tasks at the cost of a dict entry each.

    ``with deadlines.bounded(timeout_s): await ...`` raises ``TimeoutError`` when the block
    runs past its deadline, as ``asyncio.timeout`` does, between ``timeout_s`` and
    ``timeout_s + check_s`` after entering it: one periodic check cancels the overdue tasks
    (with a marker), and leaving the block turns that cancellation into ``TimeoutError``. Any
    other cancellation of the task goes through unchanged.
    """

    def __init__(self, check_s: float = CHECK_S) -> None:
        self._check_s = check_s
        self._deadlines: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def bounded(self, timeout_s: float) -> _Bounded:
        """A context manager bounding the current task's time in its block to ``timeout_s``."""
        return _Bounded(self, timeout_s)

    def _enter(self, task: asyncio.Task[Any], timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        self._deadlines[task] = loop.time() + timeout_s
        if self._timer is None:
            self._timer = loop.call_later(self._check_s, self._check)

    def _leave(self, task: asyncio.Task[Any], cancelled: bool) -> bool:
        """Forget ``task``; True when its cancellation was this object's (a timeout)."""
        self._deadlines.pop(task, None)
        if task not in self._expired:
            return False
        self._expired.discard(task)
        return task.uncancel() == 0 and cancelled

    def _check(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for task in [t for t, deadline in self._deadlines.items() if deadline <= now]:
            del self._deadlines[task]
            self._expired.add(task)
            task.cancel()
        self._timer = loop.call_later(self._check_s, self._check) if self._deadlines else None


class _Bounded:
    __slots__ = ("_owner", "_task", "_timeout_s")

    def __init__(self, owner: TaskDeadlines, timeout_s: float) -> None:
        self._owner, self._timeout_s = owner, timeout_s
        self._task: asyncio.Task[Any] | None = None

    def __enter__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("bounded() must be used inside a task")
        self._task = task
        self._owner._enter(task, self._timeout_s)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _: Any) -> None:
        assert self._task is not None
        if self._owner._leave(self._task, kind is asyncio.CancelledError):
            raise TimeoutError from exc
