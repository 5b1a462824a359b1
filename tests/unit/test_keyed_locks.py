"""KeyedLocks: one lock per key while in use, none left afterwards."""

from __future__ import annotations

import asyncio

from tabstream.producer_api.keyed_locks import KeyedLocks


async def test_holders_of_one_key_take_turns_and_the_lock_goes_with_the_last() -> None:
    locks, inside, most = KeyedLocks(), [0], [0]

    async def hold(key: str) -> None:
        async with locks.hold(key):
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            await asyncio.sleep(0)
            inside[0] -= 1

    await asyncio.gather(*(hold("a") for _ in range(5)))
    assert most[0] == 1 and len(locks) == 0


async def test_other_keys_do_not_wait_and_a_failing_holder_releases() -> None:
    locks = KeyedLocks()
    async with locks.hold("a"), locks.hold("b"):
        assert len(locks) == 2
    try:
        async with locks.hold("a"):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert len(locks) == 0
