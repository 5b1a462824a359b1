"""Kafka publish deadlines: an unacknowledged send fails in time, an acknowledged one is let go."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaTimeoutError

from tabstream.adapters.bus.kafka import AckDeadlines


async def test_unacknowledged_send_fails_after_the_timeout() -> None:
    loop = asyncio.get_running_loop()
    deadlines = AckDeadlines(0.15)
    late: asyncio.Future[int] = loop.create_future()
    start = loop.time()
    deadlines.watch(late)
    with pytest.raises(KafkaTimeoutError):
        await late
    assert 0.15 <= loop.time() - start <= 0.15 + 0.2 + 0.1


async def test_acknowledged_sends_are_dropped_and_the_timer_stops() -> None:
    loop = asyncio.get_running_loop()
    deadlines = AckDeadlines(5.0)
    acked: list[asyncio.Future[int]] = [loop.create_future() for _ in range(3)]
    for future in acked:
        deadlines.watch(future)
        future.set_result(1)
    slow: asyncio.Future[int] = loop.create_future()
    deadlines.watch(slow)
    await asyncio.sleep(0.15)
    assert [futures for _, futures in deadlines._pending] == [[slow]]
    slow.set_result(2)
    await asyncio.sleep(0.15)
    assert deadlines._pending == [] and deadlines._timer is None
    assert [f.result() for f in acked] == [1, 1, 1] and slow.result() == 2
