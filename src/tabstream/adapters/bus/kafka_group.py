"""Kafka consumer-group members and their consume-transform-produce transactions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from itertools import repeat
from typing import TYPE_CHECKING, Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as KafkaTP
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

from tabstream.adapters.bus.port import BusUnavailable, OutgoingRecord, Record, TopicPartition

if TYPE_CHECKING:
    from tabstream.adapters.bus.kafka import KafkaEventLog


_T = TypeVar("_T")
# How long the broker may hold a fetch that has no new data. aiokafka's 500 ms default delays
# a record by up to that much whenever its partition is not in the fetch in flight (resumed
# after a job, or skipped while earlier records were still buffered): a short long poll keeps
# command pick-up prompt, at the cost of a few idle fetches a second.
FETCH_MAX_WAIT_MS = 50


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the broker could not answer in time (rather than a bad request)."""
    if isinstance(exc, TimeoutError | KafkaTimeoutError | KafkaConnectionError):
        return True
    return isinstance(exc, KafkaError) and bool(getattr(exc, "retriable", False))


async def bounded(what: str, timeout_s: float, call: Callable[[], Awaitable[_T]]) -> _T:
    """Await ``call()``; a timeout or a connection error becomes ``BusUnavailable``."""
    try:
        async with asyncio.timeout(timeout_s):
            return await call()
    except (TimeoutError, KafkaError) as exc:
        if unavailable(exc):
            raise BusUnavailable(f"kafka: {what} failed: {exc!r}") from exc
        raise


_new_tuple = tuple.__new__


def to_record(message: Any) -> Record:
    """Convert an aiokafka ``ConsumerRecord`` to a port ``Record`` (hot path on replay)."""
    key, headers = message.key, message.headers
    return _new_tuple(
        Record,
        (
            message.topic,
            message.partition,
            message.offset,
            None if key is None else key.decode(),
            message.value,
            tuple(headers) if headers else (),
            message.timestamp,
        ),
    )


def to_records(messages: list[Any]) -> list[Record]:
    """Convert a fetched list of ``ConsumerRecord``s, emptying it as it goes (hot path on replay).

    Each ``ConsumerRecord`` is released as soon as its ``Record`` exists, so the number of live
    objects stays flat: converting a full batch in place would double it and set off the
    cyclic GC many times per batch, which costs more than the conversion itself.
    """
    messages.reverse()
    return list(map(to_record, map(messages.pop, repeat(-1, len(messages)))))


def _kafka_offsets(offsets: Mapping[TopicPartition, int]) -> dict[KafkaTP, int]:
    return {KafkaTP(tp.topic, tp.partition): int(o) for tp, o in offsets.items()}


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
        log: KafkaEventLog,
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
        self._log = log
        self._max_poll_interval_ms = max_poll_interval_ms
        self._session_timeout_ms = session_timeout_ms
        self._consumer: Any = None
        self._tx_producer: Any = None

    async def start(self) -> None:
        """Connect and subscribe; the group join completes during the first polls."""
        consumer = AIOKafkaConsumer(
            *self.topics,
            **self._log.client_kwargs(),
            group_id=self.group,
            group_instance_id=self.instance_id,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            max_poll_interval_ms=self._max_poll_interval_ms,
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=max(100, self._session_timeout_ms // 3),
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        try:
            await bounded(
                "consumer start", self._log.request_timeout_ms / 1000 + 0.5, consumer.start
            )
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer

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
        await self.raw.commit(_kafka_offsets(offsets))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[KafkaTransaction]:
        """A producer transaction carrying the sends and this group's offsets."""
        producer = await self._transactional_producer()
        async with producer.transaction():
            tx = KafkaTransaction(producer)
            yield tx
            await tx.flush()
            if tx.offsets:
                await producer.send_offsets_to_transaction(_kafka_offsets(tx.offsets), self.group)

    def assignment(self) -> frozenset[TopicPartition]:
        """Partitions currently assigned to this member."""
        if self._consumer is None:
            return frozenset()
        return frozenset(TopicPartition(tp.topic, tp.partition) for tp in self.raw.assignment())

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
        tps = [KafkaTP(tp.topic, tp.partition) for tp in partitions]
        return [tp for tp in tps if tp in assigned]

    async def _transactional_producer(self) -> Any:
        if self._tx_producer is None:
            name = self.instance_id or uuid.uuid4().hex
            producer = AIOKafkaProducer(
                **self._log.producer_kwargs(),
                transactional_id=f"{self._log.transactional_prefix}-{self.group}-{name}",
            )
            try:
                await bounded(
                    "producer start", self._log.request_timeout_ms / 1000 + 0.5, producer.start
                )
            except BaseException:
                await producer.stop()
                raise
            self._tx_producer = producer
        return self._tx_producer
