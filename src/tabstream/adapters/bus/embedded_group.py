"""Group members of the embedded log; the coordinator is the owning ``EmbeddedEventLog``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from tabstream.adapters.bus.port import OutgoingRecord, Record, TopicPartition

if TYPE_CHECKING:
    from tabstream.adapters.bus.embedded import EmbeddedEventLog

_RECHECK_S = 0.2


def round_robin(
    tps: Sequence[TopicPartition], subscriptions: Sequence[set[str]]
) -> list[list[TopicPartition]]:
    """Deal ``tps`` over members (in join order), skipping members not subscribed to the topic."""
    plan: list[list[TopicPartition]] = [[] for _ in subscriptions]
    turn = 0
    for tp in tps:
        for _ in range(len(subscriptions)):
            member = turn % len(subscriptions)
            turn += 1
            if tp.topic in subscriptions[member]:
                plan[member].append(tp)
                break
    return plan


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
        log: EmbeddedEventLog,
        group: str,
        topics: tuple[str, ...],
        *,
        instance_id: str | None = None,
    ) -> None:
        self.group = group
        self.topics = topics
        self.instance_id = instance_id
        self._log = log
        self._assigned: frozenset[TopicPartition] = frozenset()
        self._positions: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()
        self._started = False

    async def start(self) -> None:
        """Join the group (this rebalances it)."""
        if not self._started:
            self._started = True
            self._log.join(self)

    async def stop(self) -> None:
        """Leave the group; uncommitted positions are forgotten."""
        if self._started:
            self._started = False
            self._log.leave(self)
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
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000
        while True:
            changed = self._log.changed
            records = self._fetch(max_records)
            remaining = deadline - loop.time()
            if records or remaining <= 0 or not self._started:
                return records
            try:
                async with asyncio.timeout(min(remaining, _RECHECK_S)):
                    await changed.wait()
            except TimeoutError:
                self._log.refresh_topics(self.topics)

    def _fetch(self, max_records: int) -> list[Record]:
        out: list[Record] = []
        for tp in sorted(self._assigned - self._paused):
            if len(out) >= max_records:
                break
            batch = self._log.fetch(tp, self._positions[tp], max_records - len(out))
            if batch:
                self._positions[tp] = batch[-1].offset + 1
                out.extend(batch)
        return out

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Durably store the group's next offsets."""
        self._log.commit_offsets(self.group, offsets)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[EmbeddedTransaction]:
        """Stage records and offsets; commit them in one SQLite transaction on normal exit."""
        tx = EmbeddedTransaction()
        yield tx
        self._log.commit_transaction(tx.records, self.group, tx.offsets)

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
        self._positions.update(self._log.committed(self.group, tps))
