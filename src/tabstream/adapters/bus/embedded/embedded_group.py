"""Members of embedded consumer groups and their atomic publish+commit transactions.

A member reads the log file (``storage.LogFile``), is given its partitions by the
``GroupCoordinator`` and waits for records through the ``ChangeSignal``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from itertools import chain

from tabstream.adapters.bus.embedded.changes import ChangeSignal
from tabstream.adapters.bus.embedded.coordinator import GroupCoordinator
from tabstream.adapters.bus.embedded.storage import LogFile
from tabstream.adapters.bus.port import OutgoingRecord, Record, TopicPartition


class EmbeddedTransaction:
    """Records and offsets staged until the owning block exits normally."""

    def __init__(self) -> None:
        self.records: list[OutgoingRecord] = []
        self.offsets: dict[TopicPartition, int] = {}

    async def publish(self, record: OutgoingRecord) -> None:
        """Stage a record."""
        self.records.append(record)

    def commit_offsets(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Stage the group's next offsets."""
        self.offsets.update(offsets)


class EmbeddedGroupConsumer:
    """A member of an embedded consumer group (see ``GroupConsumer``)."""

    def __init__(
        self,
        file: LogFile,
        changes: ChangeSignal,
        coordinator: GroupCoordinator,
        group: str,
        topics: tuple[str, ...],
        *,
        instance_id: str | None = None,
    ) -> None:
        self.group = group
        self.topics = topics
        self.instance_id = instance_id
        self._file = file
        self._changes = changes
        self._coordinator = coordinator
        self._assigned: frozenset[TopicPartition] = frozenset()
        self._positions: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()
        self._started = False

    async def start(self) -> None:
        """Join the group (this rebalances it)."""
        if not self._started:
            self._started = True
            self._coordinator.join(self)

    async def stop(self) -> None:
        """Leave the group; uncommitted positions are forgotten."""
        if self._started:
            self._started = False
            self._coordinator.leave(self)
            self.assign(frozenset(), {})

    def assign(
        self, tps: frozenset[TopicPartition], committed: Mapping[TopicPartition, int]
    ) -> None:
        """Called by the coordinator: new partitions, positions reset to committed offsets."""
        self._assigned = tps
        self._positions = {tp: committed.get(tp, 0) for tp in tps}
        self._paused &= tps

    async def poll(self, timeout_ms: int = 1000, max_records: int = 500) -> list[Record]:
        """Records from assigned, non-paused partitions; [] after ``timeout_ms``."""
        if not self._started:
            raise RuntimeError("consumer is not started")
        return await self._changes.poll_until(
            lambda: self._fetch(max_records),
            timeout_ms / 1000,
            on_recheck=lambda: self._coordinator.refresh_topics(self.topics),
            active=lambda: self._started,
        )

    def _fetch(self, max_records: int) -> list[Record]:
        tps = sorted(self._assigned - self._paused)
        batches = self._file.fetch_next(self._positions, tps, limit=max_records, total=max_records)
        return list(chain.from_iterable(batches))

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Durably store the group's next offsets."""
        self._file.commit_offsets(self.group, offsets)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[EmbeddedTransaction]:
        """Stage records and offsets; commit them in one SQLite transaction on normal exit."""
        tx = EmbeddedTransaction()
        yield tx
        self._file.commit_transaction(tx.records, self.group, tx.offsets)
        self._changes.notify()

    def assignment(self) -> frozenset[TopicPartition]:
        """Partitions currently assigned to this member."""
        return self._assigned

    def pause(self, *partitions: TopicPartition) -> None:
        """Stop delivering from these (assigned) partitions."""
        self._paused.update(tp for tp in partitions if tp in self._assigned)

    def resume(self, *partitions: TopicPartition) -> None:
        """Deliver again from these partitions."""
        self._paused.difference_update(partitions)

    async def seek_to_committed(self, *partitions: TopicPartition) -> None:
        """Rewind to the committed offsets (all assigned partitions when none given)."""
        tps = [tp for tp in (partitions or self._assigned) if tp in self._assigned]
        self._positions.update(self._file.committed(self.group, tps))
