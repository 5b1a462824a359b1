"""Kafka consumer-group members and their consume-transform-produce transactions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as KafkaTP

from tabstream.adapters.bus.kafka.calls import start_or_release
from tabstream.adapters.bus.kafka.client_config import KafkaClientConfig
from tabstream.adapters.bus.kafka.records import kafka_offsets, kafka_tp, port_tp, to_records
from tabstream.adapters.bus.port import OutgoingRecord, Record, TopicPartition


class KafkaTransaction:
    """Sends inside an open producer transaction; offsets go in when the block ends."""

    def __init__(self, producer: Any) -> None:
        self._producer = producer
        self._sent: list[asyncio.Future[Any]] = []
        self.offsets: dict[TopicPartition, int] = {}

    async def publish(self, record: OutgoingRecord) -> None:
        """Send a record within the transaction (invisible to read_committed until commit)."""
        headers = list(record.headers) or None
        self._sent.append(
            await self._producer.send(
                record.topic, record.value, key=record.key.encode(), headers=headers
            )
        )

    def commit_offsets(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Stage the group's next offsets."""
        self.offsets.update(offsets)

    async def flush(self) -> None:
        """Wait until every staged send is acknowledged."""
        await asyncio.gather(*self._sent)


class KafkaGroupConsumer:
    """A Kafka group member (see ``GroupConsumer``)."""

    def __init__(
        self,
        config: KafkaClientConfig,
        group: str,
        topics: tuple[str, ...],
        *,
        instance_id: str | None,
        max_poll_interval_ms: int,
        session_timeout_ms: int,
    ) -> None:
        self.group = group
        self.topics = topics
        self.instance_id = instance_id
        self._config = config
        self._max_poll_interval_ms = max_poll_interval_ms
        self._session_timeout_ms = session_timeout_ms
        self._consumer: Any = None
        self._tx_producer: Any = None

    async def start(self) -> None:
        """Connect, subscribe and wait for the group's first assignment (``join_timeout_s``)."""
        settings = self._config.member_kwargs(
            self.group,
            instance_id=self.instance_id,
            max_poll_interval_ms=self._max_poll_interval_ms,
            session_timeout_ms=self._session_timeout_ms,
        )
        consumer = AIOKafkaConsumer(*self.topics, **settings)
        self._consumer = await start_or_release("consumer start", consumer, self.join_timeout_s)

    @property
    def join_timeout_s(self) -> float:
        """How long ``start`` may take: aiokafka's start returns once the group has assigned
        partitions, and the coordinator may first wait out a member that died without leaving
        (its session timeout), then the rebalance (aiokafka's rebalance timeout defaults to the
        session timeout), besides the requests themselves."""
        return self._config.timeout_s + 2 * self._session_timeout_ms / 1000

    async def stop(self) -> None:
        """Leave the group and stop the transactional producer."""
        consumer, producer = self._consumer, self._tx_producer
        self._consumer = self._tx_producer = None
        if consumer is not None:
            await consumer.stop()
        if producer is not None:
            await producer.stop()

    @property
    def raw(self) -> Any:
        """The started ``AIOKafkaConsumer``."""
        if self._consumer is None:
            raise RuntimeError("consumer is not started")
        return self._consumer

    async def poll(self, timeout_ms: int = 1000, max_records: int = 500) -> list[Record]:
        """``getmany`` flattened, in order per partition."""
        batches = await self.raw.getmany(timeout_ms=timeout_ms, max_records=max_records)
        return [r for messages in batches.values() for r in to_records(messages)]

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit the group's next offsets."""
        await self.raw.commit(kafka_offsets(offsets))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[KafkaTransaction]:
        """A producer transaction carrying the sends and this group's offsets."""
        producer = await self._transactional_producer()
        async with producer.transaction():
            tx = KafkaTransaction(producer)
            yield tx
            await tx.flush()
            if tx.offsets:
                await producer.send_offsets_to_transaction(kafka_offsets(tx.offsets), self.group)

    def assignment(self) -> frozenset[TopicPartition]:
        """Partitions currently assigned to this member."""
        if self._consumer is None:
            return frozenset()
        return frozenset(port_tp(tp) for tp in self.raw.assignment())

    def pause(self, *partitions: TopicPartition) -> None:
        """Stop fetching these partitions; the member keeps heartbeating while it polls."""
        self.raw.pause(*self._assigned_kafka_tps(partitions))

    def resume(self, *partitions: TopicPartition) -> None:
        """Fetch these partitions again."""
        self.raw.resume(*self._assigned_kafka_tps(partitions))

    async def seek_to_committed(self, *partitions: TopicPartition) -> None:
        """Rewind to the committed offsets (the beginning where none)."""
        tps = self._assigned_kafka_tps(partitions or tuple(self.assignment()))
        for tp in tps:
            committed = await self.raw.committed(tp)
            if committed is None:
                await self.raw.seek_to_beginning(tp)
            else:
                self.raw.seek(tp, committed)

    def _assigned_kafka_tps(self, partitions: tuple[TopicPartition, ...]) -> list[KafkaTP]:
        assigned = self.raw.assignment()
        return [tp for tp in map(kafka_tp, partitions) if tp in assigned]

    async def _transactional_producer(self) -> Any:
        """This member's transactional producer, started on first use."""
        if self._tx_producer is None:
            name = self.instance_id or uuid.uuid4().hex
            settings = self._config.transactional_producer_kwargs(self.group, name)
            producer = AIOKafkaProducer(**settings)
            timeout_s = self._config.timeout_s
            self._tx_producer = await start_or_release("producer start", producer, timeout_s)
        return self._tx_producer
