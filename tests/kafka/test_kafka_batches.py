"""The Kafka log hands records published in one loop turn to aiokafka as one batch per partition."""

from __future__ import annotations

import asyncio

import pytest

from tabstream.adapters.bus.kafka import KafkaEventLog
from tabstream.adapters.bus.port import OutgoingRecord

pytestmark = pytest.mark.kafka


async def test_a_turns_records_share_a_batch_and_a_full_batch_starts_another(
    kafka_bootstrap: str, unique_name: str
) -> None:
    log = KafkaEventLog(kafka_bootstrap, max_batch_size=64 * 1024)
    await log.start()
    try:
        await log.create_topics({unique_name: 2})
        sends = 0
        producer = log._producer
        send_batch = producer.send_batch

        async def counted(*args: object, **kwargs: object) -> object:
            nonlocal sends
            sends += 1
            return await send_batch(*args, **kwargs)

        producer.send_batch = counted
        small = [OutgoingRecord(unique_name, "same-key", f"s{i}".encode()) for i in range(40)]
        positions = await asyncio.gather(*(log.publish(r) for r in small))
        assert sends == 1 and len({p.partition for p in positions}) == 1
        first = positions[0].offset
        assert [p.offset for p in positions] == list(range(first, first + 40))

        big = [OutgoingRecord(unique_name, "same-key", bytes([i]) * 20_000) for i in range(12)]
        positions = await asyncio.gather(*(log.publish(r) for r in big))
        assert sends > 2  # 240 kB in 64 kB batches
        read = {(r.partition, r.offset): r.value async for r in log.read(unique_name)}
        assert [read[p] for p in positions] == [r.value for r in big]
    finally:
        await log.close()
