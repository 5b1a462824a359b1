"""Coarse deadlines: a future not done in time fails, never early; done ones are let go."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaTimeoutError

from tabstream.adapters.bus.kafka.calls import no_ack as _no_ack
from tabstream.common.deadlines import Deadlines, TaskDeadlines


async def test_a_future_not_done_fails_after_its_timeout_and_not_before() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(_no_ack)
    late: asyncio.Future[int] = loop.create_future()
    start = loop.time()
    deadlines.watch(late, 0.15)
    with pytest.raises(KafkaTimeoutError):
        await late
    assert 0.15 <= loop.time() - start <= 0.15 + 0.2 + 0.1


async def test_futures_with_different_timeouts_fail_each_at_its_own_deadline() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(TimeoutError, check_s=0.02)
    short: asyncio.Future[None] = loop.create_future()
    long: asyncio.Future[None] = loop.create_future()
    start = loop.time()
    deadlines.watch(short, 0.05)
    deadlines.watch(long, 0.3)
    with pytest.raises(TimeoutError):
        await short
    assert 0.05 <= loop.time() - start < 0.3 and not long.done()
    with pytest.raises(TimeoutError):
        await long
    assert 0.3 <= loop.time() - start <= 0.3 + 0.04 + 0.1


async def test_done_futures_are_let_go_and_the_timer_stops() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(_no_ack)
    acked: list[asyncio.Future[int]] = [loop.create_future() for _ in range(3)]
    for future in acked:
        deadlines.watch(future, 5.0)
        future.set_result(1)
    slow: asyncio.Future[int] = loop.create_future()
    deadlines.watch(slow, 5.0)
    await asyncio.sleep(0.15)
    assert deadlines.watched == 1
    slow.set_result(2)
    await asyncio.sleep(0.15)
    assert deadlines.watched == 0 and deadlines._timer is None
    assert [f.result() for f in acked] == [1, 1, 1] and slow.result() == 2


async def test_a_cancelled_future_is_let_go_without_error() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(TimeoutError, check_s=0.02)
    gone: asyncio.Future[None] = loop.create_future()
    deadlines.watch(gone, 0.05)
    gone.cancel()
    await asyncio.sleep(0.15)
    assert gone.cancelled() and deadlines.watched == 0


async def test_a_bounded_block_past_its_deadline_raises_timeout_error_in_time() -> None:
    loop = asyncio.get_running_loop()
    deadlines = TaskDeadlines(check_s=0.02)
    start = loop.time()
    with pytest.raises(TimeoutError), deadlines.bounded(0.1):
        await asyncio.sleep(5)
    assert 0.1 <= loop.time() - start <= 0.1 + 0.02 + 0.1
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    await asyncio.sleep(0)  # no cancellation left behind


async def test_blocks_done_in_time_pass_and_the_timer_stops() -> None:
    deadlines = TaskDeadlines(check_s=0.02)

    async def quick(n: int) -> int:
        with deadlines.bounded(1.0):
            await asyncio.sleep(0.01)
            return n

    assert await asyncio.gather(*(quick(n) for n in range(20))) == list(range(20))
    await asyncio.sleep(0.05)
    assert deadlines._deadlines == {} and deadlines._timer is None


async def test_only_the_overdue_task_times_out() -> None:
    deadlines = TaskDeadlines(check_s=0.02)

    async def wait(timeout_s: float, work_s: float) -> str:
        try:
            with deadlines.bounded(timeout_s):
                await asyncio.sleep(work_s)
        except TimeoutError:
            return "timeout"
        return "done"

    assert await asyncio.gather(wait(0.05, 1.0), wait(1.0, 0.1)) == ["timeout", "done"]


async def test_an_outside_cancellation_is_not_turned_into_a_timeout() -> None:
    deadlines = TaskDeadlines(check_s=0.02)

    async def bounded_sleep() -> None:
        with deadlines.bounded(5.0):
            await asyncio.sleep(5)

    task = asyncio.create_task(bounded_sleep())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert deadlines._deadlines == {}
