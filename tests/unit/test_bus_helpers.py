"""The bus backends' shared helpers: starting a Kafka client without leaking it, and the
embedded backend's one wait loop."""

from __future__ import annotations

import asyncio

import pytest

from tabstream.adapters.bus.embedded.changes import RECHECK_S, ChangeSignal
from tabstream.adapters.bus.kafka.calls import start_or_release
from tabstream.adapters.bus.port import BusUnavailable


class FakeClient:
    def __init__(self, start_s: float = 0.0, fail: bool = False) -> None:
        self.start_s, self.fail = start_s, fail
        self.stopped = self.closed = False

    async def start(self) -> None:
        await asyncio.sleep(self.start_s)
        if self.fail:
            raise ValueError("bad config")

    async def stop(self) -> None:
        self.stopped = True

    async def close(self) -> None:
        self.closed = True


async def test_a_started_client_is_returned_and_kept() -> None:
    client = FakeClient()
    assert await start_or_release("connect", client, 1.0) is client
    assert not client.stopped


async def test_a_client_that_does_not_start_in_time_is_stopped() -> None:
    client = FakeClient(start_s=10.0)
    with pytest.raises(BusUnavailable, match="connect failed"):
        await start_or_release("connect", client, 0.05)
    assert client.stopped


async def test_a_client_that_fails_to_start_is_released_and_the_error_goes_on() -> None:
    client = FakeClient(fail=True)
    with pytest.raises(ValueError, match="bad config"):
        await start_or_release("admin start", client, 1.0, client.close)
    assert client.closed and not client.stopped


async def test_poll_until_returns_what_a_notify_made_available() -> None:
    changes, box = ChangeSignal(), list[int]()

    async def write_later() -> None:
        await asyncio.sleep(0.01)
        box.append(1)
        changes.notify()

    writer = asyncio.create_task(write_later())
    started = asyncio.get_running_loop().time()
    assert await changes.poll_until(lambda: list(box), 5.0) == [1]
    assert asyncio.get_running_loop().time() - started < RECHECK_S
    await writer


async def test_poll_until_rechecks_and_gives_up_after_the_timeout() -> None:
    changes, rechecks = ChangeSignal(), list[int]()
    found: list[int] = await changes.poll_until(list, 0.5, on_recheck=lambda: rechecks.append(1))
    assert found == []
    assert len(rechecks) >= 2


async def test_poll_until_stops_waiting_once_inactive() -> None:
    changes = ChangeSignal()
    started = asyncio.get_running_loop().time()
    assert await changes.poll_until(list, 5.0, active=lambda: False) == []
    assert asyncio.get_running_loop().time() - started < RECHECK_S
