"""The embedded EventLog: one SQLite file (WAL) holding topics, records and group offsets.

It gives one process the semantics of the Kafka adapter (ordering per partition, murmur2
keys, durable acks, consumer groups, commit after processing, atomic publish+commit,
replay from any offset). It is not a distributed broker: the group coordinator lives in
this process, and other processes on the same file only see each other's writes by polling.

The parts: ``storage`` (the file and all SQL), ``changes`` (the wait loop), ``coordinator``
(group membership), ``embedded_group`` (members) and ``follower``. This module ties them
together and batches concurrent publishes into one transaction.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from pathlib import Path

from tabstream.adapters.bus.embedded.changes import ChangeSignal
from tabstream.adapters.bus.embedded.coordinator import GroupCoordinator
from tabstream.adapters.bus.embedded.embedded_group import EmbeddedGroupConsumer
from tabstream.adapters.bus.embedded.follower import EmbeddedFollower
from tabstream.adapters.bus.embedded.storage import REPLAY_BATCH, LogFile
from tabstream.adapters.bus.port import (
    BusUnavailable,
    OutgoingRecord,
    Position,
    Record,
    TopicPartition,
    flatten,
)


class EmbeddedEventLog:
    """EventLog on one SQLite file in WAL mode, for a single process (see module docstring)."""

    def __init__(self, path: Path, *, synchronous: str = "NORMAL") -> None:
        self._file = LogFile(path, synchronous)
        self.path = self._file.path
        self._changes = ChangeSignal()
        self._coordinator = GroupCoordinator(self._file, self._changes)
        self._pending: list[tuple[OutgoingRecord, asyncio.Future[Position]]] = []
        self._flush_handle: asyncio.Handle | None = None

    async def start(self) -> None:
        """Open (and if needed create) the file."""
        self._file.open()

    async def close(self) -> None:
        """Flush pending publishes, drop group members and close the file."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush()
        await self._coordinator.stop_all()
        self._file.close()

    async def create_topics(self, topics: Mapping[str, int]) -> None:
        """Create missing topics; existing ones keep their partition count."""
        self._file.create_topics(topics)
        self._coordinator.topics_changed()

    async def partitions(self, topic: str) -> int:
        """Partition count of ``topic``; KeyError when it does not exist."""
        return self._file.partitions(topic)

    async def publish(self, record: OutgoingRecord) -> Position:
        """Append ``record``; resolves once the group-committed SQLite transaction is durable."""
        self._file.db  # noqa: B018 - fail fast when closed
        future: asyncio.Future[Position] = asyncio.get_running_loop().create_future()
        self._pending.append((record, future))
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)
        return await future

    def consumer(
        self,
        group: str,
        topics: Sequence[str],
        *,
        instance_id: str | None = None,
        max_poll_interval_ms: int = 300_000,
        session_timeout_ms: int = 10_000,
    ) -> EmbeddedGroupConsumer:
        """A member of ``group``; membership is coordinated inside this process."""
        return EmbeddedGroupConsumer(
            self._file,
            self._changes,
            self._coordinator,
            group,
            tuple(topics),
            instance_id=instance_id,
        )

    def read(
        self,
        topic: str,
        *,
        partitions: Sequence[int] | None = None,
        from_offset: int = 0,
        to_end: bool = True,
    ) -> AsyncIterator[Record]:
        """Replay ``topic`` from ``from_offset`` (see the port; here partition by partition)."""
        return flatten(
            self.read_batches(topic, partitions=partitions, from_offset=from_offset, to_end=to_end)
        )

    async def read_batches(
        self,
        topic: str,
        *,
        partitions: Sequence[int] | None = None,
        from_offset: int = 0,
        to_end: bool = True,
    ) -> AsyncGenerator[list[Record], None]:
        """``read`` in batches of up to 5000 records of one partition (see the port)."""
        parts = list(partitions) if partitions is not None else range(self._file.partitions(topic))
        tps = [TopicPartition(topic, p) for p in parts]
        if to_end:
            batches = self._read_to_end(tps, from_offset, self._file.end_offsets(topic))
        else:
            batches = self._follow(tps, from_offset)
        async for batch in batches:
            yield batch

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """Next offset per partition of ``topic`` (committed rows only)."""
        return self._file.end_offsets(topic)

    def follower(
        self,
        topics: Sequence[str],
        *,
        from_offsets: Mapping[TopicPartition, int] | None = None,
    ) -> EmbeddedFollower:
        """A follower of every partition of ``topics`` (see the port)."""
        return EmbeddedFollower(self._file, self._changes, tuple(topics), dict(from_offsets or {}))

    async def _read_to_end(
        self, tps: list[TopicPartition], start: int, ends: dict[int, int]
    ) -> AsyncIterator[list[Record]]:
        """Each partition in turn, up to its end offset in ``ends``."""
        for tp in tps:
            pos, end = start, ends.get(tp.partition, 0)
            while pos < end:
                batch = self._file.fetch(tp, pos, REPLAY_BATCH, end)
                if not batch:
                    break
                yield batch
                pos = batch[-1].offset + 1
                await asyncio.sleep(0)

    async def _follow(self, tps: list[TopicPartition], start: int) -> AsyncIterator[list[Record]]:
        """Every partition, forever: what is there, then whatever is written next."""
        positions = dict.fromkeys(tps, start)
        while True:
            fetched = await self._changes.poll_until(
                lambda: self._file.fetch_next(positions, tps), math.inf
            )
            for batch in fetched:
                yield batch

    def _flush(self) -> None:
        """Append every pending publish in one transaction and resolve their futures."""
        self._flush_handle = None
        batch, self._pending = self._pending, []
        known = set(self._file.topics)
        try:
            positions = self._file.append([record for record, _ in batch])
        except sqlite3.Error as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(BusUnavailable(f"embedded log write failed: {exc}"))
            return
        for (_, future), position in zip(batch, positions, strict=True):
            if not future.done():
                future.set_result(position)
        if set(self._file.topics) != known:
            self._coordinator.topics_changed()
        self._changes.notify()
