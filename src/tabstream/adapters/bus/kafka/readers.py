"""Group-less ``read_committed`` readers of the Kafka log: replay (``read_batches``) and the
long-lived ``KafkaFollower``.

Both assign partitions themselves and seek; neither joins a group nor commits.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka import TopicPartition as KafkaTP

from tabstream.adapters.bus.kafka.calls import bounded, start_or_release
from tabstream.adapters.bus.kafka.clients import SharedClients
from tabstream.adapters.bus.kafka.records import port_tp, to_records
from tabstream.adapters.bus.port import Record, TopicPartition

_MAX_RECORDS = 10_000


async def replay_batches(
    clients: SharedClients,
    topic: str,
    partitions: Sequence[int] | None,
    from_offset: int,
    to_end: bool,
) -> AsyncGenerator[list[Record], None]:
    """``EventLog.read_batches`` on a reader of its own: one list per partition and fetch."""
    config = clients.config
    parts = list(partitions) if partitions is not None else range(await clients.partitions(topic))
    tps = [KafkaTP(topic, p) for p in parts]
    consumer = AIOKafkaConsumer(**config.reader_kwargs())
    await start_or_release("reader start", consumer, config.timeout_s)
    try:
        if to_end:
            ends = await bounded("end_offsets", config.timeout_s, lambda: consumer.end_offsets(tps))
            async for batch in _read_to_end(consumer, tps, from_offset, ends):
                yield batch
        else:
            async for batch in _follow(consumer, tps, from_offset):
                yield batch
    finally:
        await consumer.stop()


async def _read_to_end(
    consumer: Any, tps: list[KafkaTP], start: int, ends: dict[KafkaTP, int]
) -> AsyncIterator[list[Record]]:
    """Every partition at once (fetches of all partitions overlap), each up to its end."""
    left = {tp: ends[tp] for tp in tps if start < ends[tp]}
    consumer.assign(list(left))
    for tp in left:
        consumer.seek(tp, start)
    while left:
        batches = await consumer.getmany(timeout_ms=1000, max_records=_MAX_RECORDS)
        for tp, messages in batches.items():
            end = left.get(tp)
            if end is None or not messages:
                continue
            if messages[-1].offset + 1 >= end:
                del left[tp]
                consumer.pause(tp)
                if messages[-1].offset >= end:
                    messages = [m for m in messages if m.offset < end]
                if not messages:
                    continue
            yield to_records(messages)
        if left:
            # Records may lie below the end offset but past the last one fetched (aborted
            # transactions, control records): a partition whose position reached its end is done.
            for tp in [tp for tp, end in left.items() if await consumer.position(tp) >= end]:
                del left[tp]
                consumer.pause(tp)


async def _follow(consumer: Any, tps: list[KafkaTP], start: int) -> AsyncIterator[list[Record]]:
    """Every partition from ``start``, forever."""
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, start)
    while True:
        batches = await consumer.getmany(timeout_ms=1000, max_records=_MAX_RECORDS)
        for messages in batches.values():
            if messages:
                yield to_records(messages)


class KafkaFollower:
    """One group-less read_committed consumer assigned every partition of some topics."""

    def __init__(
        self, clients: SharedClients, topics: tuple[str, ...], start: dict[TopicPartition, int]
    ) -> None:
        self._clients, self._topics, self._start = clients, topics, start
        self._consumer: Any = None
        self._tps: list[KafkaTP] = []

    async def start(self) -> None:
        """Connect, assign every partition of the topics and seek to the start offsets."""
        tps = [
            KafkaTP(topic, p)
            for topic in self._topics
            for p in range(await self._clients.partitions(topic))
        ]
        config = self._clients.config
        consumer = AIOKafkaConsumer(**config.reader_kwargs())
        await start_or_release("connect", consumer, config.timeout_s)
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, self._start.get(port_tp(tp), 0))
        self._consumer, self._tps = consumer, tps
        await self.end_offsets()  # connects the probe now rather than on the first catch-up

    async def stop(self) -> None:
        """Disconnect."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def poll(self, timeout_ms: int = 1000) -> list[Record]:
        """``getmany`` flattened (in offset order per partition)."""
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=_MAX_RECORDS)
        return [r for messages in batches.values() for r in to_records(messages)]

    async def position(self, tp: TopicPartition) -> int:
        """The consumer's position: past the returned records and any markers after them."""
        return int(await self._consumer.position(KafkaTP(tp.topic, tp.partition)))

    async def end_offsets(self) -> dict[TopicPartition, int]:
        """Last stable offset of every followed partition (one request, on the shared probe)."""
        ends = await self._clients.end_offsets(self._tps)
        return {port_tp(tp): o for tp, o in ends.items()}
