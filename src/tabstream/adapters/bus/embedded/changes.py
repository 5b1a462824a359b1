"""How embedded readers wait for records: woken by this process's writes, rechecking for others'.

``ChangeSignal.poll_until`` is the one wait loop of the embedded backend; group members,
followers and ``read(to_end=False)`` all poll through it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")

RECHECK_S = 0.2
"""How often a waiting reader looks again without being woken: other processes writing to the
same file cannot wake it."""


class ChangeSignal:
    """Wakes waiting readers whenever this process commits records or topics."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Wake every reader waiting now (later waits need a later ``notify``)."""
        self._event.set()
        self._event = asyncio.Event()

    async def poll_until(
        self,
        fetch: Callable[[], list[_T]],
        timeout_s: float,
        *,
        on_recheck: Callable[[], object] | None = None,
        active: Callable[[], bool] | None = None,
    ) -> list[_T]:
        """Call ``fetch()`` until it returns something or ``timeout_s`` passed (``math.inf``:
        never) or ``active()`` turned false; returns the last result.

        Between calls it waits for a ``notify`` or ``RECHECK_S``, whichever comes first; after
        a wait that no ``notify`` ended it calls ``on_recheck()`` (where a reader looks for
        topics another process created).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            changed = self._event  # taken before fetching, so a write during the fetch wakes us
            found = fetch()
            left = deadline - loop.time()
            if found or left <= 0 or (active is not None and not active()):
                return found
            try:
                async with asyncio.timeout(min(left, RECHECK_S)):
                    await changed.wait()
            except TimeoutError:
                if on_recheck is not None:
                    on_recheck()
