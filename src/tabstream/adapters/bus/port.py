"""The EventLog port: a partitioned, durable, replayable log with consumer groups.

Values are opaque bytes (the envelope codec lives in ``tabstream.schemas``). Two backends
implement it with the same semantics and pass one contract suite (``tests/contracts``):
``embedded`` (SQLite WAL, one process) and ``kafka`` (aiokafka, real brokers).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import NamedTuple, Protocol, runtime_checkable

Headers = tuple[tuple[str, bytes], ...]


class TopicPartition(NamedTuple):
    """One partition of one topic (a named tuple: cheap to build, hash and compare)."""

    topic: str
    partition: int


class Position(NamedTuple):
    """Where a published record landed (a tuple: cheap on the publish hot path)."""

    partition: int
    offset: int


class Record(NamedTuple):
    """A record read from the log.

    An immutable named tuple: replay builds one per record, so it must cost little more than
    the tuple itself (``Record._make(fields)`` or ``tuple.__new__(Record, fields)``).
    """

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    headers: Headers = ()
    timestamp_ms: int = 0

    @property
    def tp(self) -> TopicPartition:
        """The record's topic and partition."""
        return TopicPartition(self.topic, self.partition)

    def header(self, name: str) -> bytes | None:
        """The first header called ``name``, or None."""
        for k, v in self.headers:
            if k == name:
                return v
        return None


class OutgoingRecord(NamedTuple):
    """A record to publish.

    An immutable named tuple: cheap to build, and a batch of them waiting to be published
    leaves the cyclic GC nothing to scan (a tuple of strings and bytes is untracked).
    """

    topic: str
    key: str
    value: bytes
    headers: Headers = ()


class BusUnavailable(RuntimeError):
    """The log could not acknowledge in time (broker down, timeout)."""


@runtime_checkable
class Transaction(Protocol):
    """Records and an offset commit that become visible together or not at all."""

    async def publish(self, record: OutgoingRecord) -> None:
        """Stage a record; invisible to ``read_committed`` readers until the transaction commits."""
        ...

    def commit_offsets(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Stage the group's next offsets (last processed + 1) to commit with the records."""
        ...


@runtime_checkable
class GroupConsumer(Protocol):
    """A member of a consumer group.

    Partitions of the subscribed topics are split between the group's live members. Delivery
    starts at the group's committed offset (or the earliest record when none), and only the
    committed offset survives a restart: anything delivered but not committed is redelivered.
    A paused member keeps its partitions (it stays in the group) but receives nothing from them.
    """

    async def start(self) -> None:
        """Join the group."""
        ...

    async def stop(self) -> None:
        """Leave the group (uncommitted positions are forgotten)."""
        ...

    async def poll(self, timeout_ms: int = 1000, max_records: int = 500) -> list[Record]:
        """Records from assigned, non-paused partitions, in order per partition; [] on timeout.

        Callers keep calling it (even while paused) to stay a live member of the group.
        """
        ...

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit the group's next offsets (last processed + 1) durably."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """Publish records and commit this group's offsets atomically (consume-transform-produce).

        Leaving the block normally commits both; an exception aborts both.
        """
        ...

    def assignment(self) -> frozenset[TopicPartition]:
        """Partitions currently assigned to this member."""
        ...

    def pause(self, *partitions: TopicPartition) -> None:
        """Stop delivering from these partitions without leaving the group."""
        ...

    def resume(self, *partitions: TopicPartition) -> None:
        """Deliver again from these partitions, from where delivery stopped."""
        ...

    async def seek_to_committed(self, *partitions: TopicPartition) -> None:
        """Rewind delivery to the group's committed offset (e.g. after a failed attempt)."""
        ...


@runtime_checkable
class LogFollower(Protocol):
    """A long-lived, group-less ``read_committed`` reader of every partition of some topics.

    It follows the log forever (one connection, no per-read start-up) and says how far it got:
    ``position(tp)`` is the next offset it will read, which moves past transaction markers and
    aborted records too, so ``position >= end_offsets()[tp]`` means "caught up" even when the
    last offsets of a partition hold no record (comparing the last record's offset + 1 would
    wait forever there).
    """

    async def start(self) -> None:
        """Assign every partition of the topics (as they are now) at their start offsets."""
        ...

    async def stop(self) -> None:
        """Release the reader."""
        ...

    async def poll(self, timeout_ms: int = 1000) -> list[Record]:
        """The next records of any partition, in offset order per partition; [] on timeout."""
        ...

    async def position(self, tp: TopicPartition) -> int:
        """The next offset this follower reads in ``tp`` (all records below it were returned)."""
        ...

    async def end_offsets(self) -> dict[TopicPartition, int]:
        """The committed end (next offset to be written) of every followed partition, now."""
        ...


@runtime_checkable
class EventLog(Protocol):
    """A durable, partitioned log: publish with a durable ack, consume in groups, replay.

    Ordering is guaranteed per partition; a key always maps to the same partition
    (murmur2, as Kafka's default partitioner), so ordering holds per key.
    """

    async def start(self) -> None:
        """Connect (Kafka) or open the file (embedded)."""
        ...

    async def close(self) -> None:
        """Flush and release everything."""
        ...

    async def create_topics(self, topics: Mapping[str, int]) -> None:
        """Create topics with the given partition counts; existing topics are left alone."""
        ...

    async def partitions(self, topic: str) -> int:
        """The number of partitions of ``topic``."""
        ...

    async def publish(self, record: OutgoingRecord) -> Position:
        """Append a record; returns once it is durably acknowledged (acks=all).

        Raises ``BusUnavailable`` when no ack arrives within the configured timeout.
        """
        ...

    def consumer(
        self,
        group: str,
        topics: Sequence[str],
        *,
        instance_id: str | None = None,
        max_poll_interval_ms: int = 300_000,
        session_timeout_ms: int = 10_000,
    ) -> GroupConsumer:
        """A (not yet started) member of ``group`` subscribed to ``topics``.

        ``instance_id`` makes the membership static and names the transactional producer
        that fences a restarted zombie of the same member.
        """
        ...

    def read(
        self,
        topic: str,
        *,
        partitions: Sequence[int] | None = None,
        from_offset: int = 0,
        to_end: bool = True,
    ) -> AsyncIterator[Record]:
        """Replay committed records of ``topic`` from ``from_offset`` in each partition.

        Records of one partition come in offset order (so one key's records come in the order
        they were written); records of different partitions may interleave. With ``to_end`` the
        iterator stops at the end offsets seen when it began; otherwise it follows the log
        forever.
        """
        ...

    def read_batches(
        self,
        topic: str,
        *,
        partitions: Sequence[int] | None = None,
        from_offset: int = 0,
        to_end: bool = True,
    ) -> AsyncIterator[list[Record]]:
        """``read`` in non-empty lists of records (one await per batch instead of per record).

        Same records, same ordering guarantee as ``read``: concatenated, the batches are what
        ``read`` yields (up to how partitions interleave).
        """
        ...

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """The next offset to be written, per partition (committed records only)."""
        ...

    def follower(
        self,
        topics: Sequence[str],
        *,
        from_offsets: Mapping[TopicPartition, int] | None = None,
    ) -> LogFollower:
        """A (not yet started) ``LogFollower`` of every partition of ``topics``, from offset 0
        or from ``from_offsets`` where given."""
        ...


async def flatten(batches: AsyncGenerator[list[Record], None]) -> AsyncIterator[Record]:
    """Records of ``read_batches`` one by one (how backends build ``read``); closes the batches."""
    try:
        async for batch in batches:
            for record in batch:
                yield record
    finally:
        await batches.aclose()
