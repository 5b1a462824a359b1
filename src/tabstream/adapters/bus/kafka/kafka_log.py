"""The Kafka EventLog on aiokafka: idempotent acks=all producer, read_committed consumers.

The parts: ``client_config`` (every client's settings), ``calls`` (deadlines and starting a
client without leaking it), ``clients`` (the shared producer, admin client and probe),
``readers`` (replay and followers), ``kafka_group`` (group members and transactions) and
``records`` (aiokafka <-> port types). This module implements the port on top of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence

from aiokafka import TopicPartition as KafkaTP
from aiokafka.admin import NewTopic
from aiokafka.errors import KafkaError

from tabstream.adapters.bus.kafka.calls import bounded, no_ack, unavailable
from tabstream.adapters.bus.kafka.client_config import KafkaClientConfig
from tabstream.adapters.bus.kafka.clients import SharedClients
from tabstream.adapters.bus.kafka.kafka_group import KafkaGroupConsumer
from tabstream.adapters.bus.kafka.readers import KafkaFollower, replay_batches
from tabstream.adapters.bus.port import (
    BusUnavailable,
    OutgoingRecord,
    Position,
    Record,
    TopicPartition,
    flatten,
)
from tabstream.common.deadlines import Deadlines

_TOPIC_EXISTS = 36


class KafkaEventLog:
    """EventLog on Apache Kafka; every component connects lazily and reconnects after a failure.

    Topics it creates get ``replication_factor`` replicas and, when given,
    ``min_insync_replicas`` (else the broker's default): with 3 and 2, acks=all publishes and
    transactions go on with one broker down, and no acknowledged record lives on one disk only.
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "tabstream",
        request_timeout_ms: int = 5000,
        transactional_prefix: str = "tabstream",
        replication_factor: int = 1,
        min_insync_replicas: int | None = None,
        linger_ms: int = 5,
        max_batch_size: int = 512 * 1024,
    ) -> None:
        self.config = KafkaClientConfig(
            bootstrap,
            client_id=client_id,
            request_timeout_ms=request_timeout_ms,
            transactional_prefix=transactional_prefix,
            linger_ms=linger_ms,
            max_batch_size=max_batch_size,
        )
        self._clients = SharedClients(self.config)
        self._replication = replication_factor
        self._topic_configs = (
            {} if min_insync_replicas is None else {"min.insync.replicas": str(min_insync_replicas)}
        )
        self._acks = Deadlines(no_ack)

    async def start(self) -> None:
        """Connect the producer; ``BusUnavailable`` when no broker answers in time."""
        await self._clients.producer()

    async def close(self) -> None:
        """Flush and stop every client."""
        await self._clients.close()

    async def create_topics(self, topics: Mapping[str, int]) -> None:
        """Create missing topics (existing ones are left as they are) and wait until their
        metadata is visible."""
        admin = await self._clients.admin()
        configs = self._topic_configs
        new = [
            NewTopic(t, int(n), self._replication, topic_configs=configs) for t, n in topics.items()
        ]
        timeout_s = self.config.timeout_s
        response = await bounded("create_topics", timeout_s, lambda: admin.create_topics(new))
        for topic, code, *rest in response.topic_errors:
            if code not in (0, _TOPIC_EXISTS):
                raise KafkaError(f"create topic {topic}: error {code} {rest}")
        for topic in topics:
            await self._wait_for_topic(topic)

    async def partitions(self, topic: str) -> int:
        """Partition count of ``topic``; KeyError when it does not exist (no auto-create)."""
        return await self._clients.partitions(topic)

    async def publish(self, record: OutgoingRecord) -> Position:
        """Send with acks=all and wait for the ack; ``BusUnavailable`` after the timeout."""
        producer = await self._clients.producer()
        try:
            future = await producer.send(
                record.topic,
                record.value,
                key=record.key.encode(),
                headers=list(record.headers) if record.headers else None,
            )
            self._acks.watch(future, self.config.timeout_s)
            meta = await future
        except (TimeoutError, KafkaError) as exc:
            if unavailable(exc):
                raise BusUnavailable(f"kafka: publish to {record.topic} failed: {exc!r}") from exc
            raise
        return Position(meta.partition, meta.offset)

    def consumer(
        self,
        group: str,
        topics: Sequence[str],
        *,
        instance_id: str | None = None,
        max_poll_interval_ms: int = 300_000,
        session_timeout_ms: int = 10_000,
    ) -> KafkaGroupConsumer:
        """A group member with manual commits, read_committed and static membership if named."""
        return KafkaGroupConsumer(
            self.config,
            group,
            tuple(topics),
            instance_id=instance_id,
            max_poll_interval_ms=max_poll_interval_ms,
            session_timeout_ms=session_timeout_ms,
        )

    def read(
        self,
        topic: str,
        *,
        partitions: Sequence[int] | None = None,
        from_offset: int = 0,
        to_end: bool = True,
    ) -> AsyncIterator[Record]:
        """Replay committed records with a group-less read_committed consumer (see the port)."""
        return flatten(
            self.read_batches(topic, partitions=partitions, from_offset=from_offset, to_end=to_end)
        )

    def read_batches(
        self,
        topic: str,
        *,
        partitions: Sequence[int] | None = None,
        from_offset: int = 0,
        to_end: bool = True,
    ) -> AsyncGenerator[list[Record], None]:
        """``read`` in batches: one list per partition and fetch (see the port)."""
        return replay_batches(self._clients, topic, partitions, from_offset, to_end)

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """Last stable offset per partition (read_committed), i.e. the next committed offset."""
        tps = [KafkaTP(topic, p) for p in range(await self.partitions(topic))]
        ends = await self._clients.end_offsets(tps)
        return {tp.partition: o for tp, o in ends.items()}

    def follower(
        self,
        topics: Sequence[str],
        *,
        from_offsets: Mapping[TopicPartition, int] | None = None,
    ) -> KafkaFollower:
        """A long-lived read_committed follower of every partition of ``topics`` (see the port)."""
        return KafkaFollower(self._clients, tuple(topics), dict(from_offsets or {}))

    async def _wait_for_topic(self, topic: str) -> None:
        """Until the metadata shows ``topic``; ``BusUnavailable`` after the timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.timeout_s
        while True:
            try:
                await self.partitions(topic)
                return
            except KeyError:
                if loop.time() > deadline:
                    raise BusUnavailable(f"kafka: topic {topic} not visible in time") from None
                await asyncio.sleep(0.05)
