"""The embedded ``LogFollower``: every partition of some topics, read from the log file."""

from __future__ import annotations

from itertools import chain

from tabstream.adapters.bus.embedded.changes import ChangeSignal
from tabstream.adapters.bus.embedded.storage import LogFile
from tabstream.adapters.bus.port import Record, TopicPartition


class EmbeddedFollower:
    """Follows topics in this file: woken by this process's writes, rechecks for others'."""

    def __init__(
        self,
        file: LogFile,
        changes: ChangeSignal,
        topics: tuple[str, ...],
        start: dict[TopicPartition, int],
    ) -> None:
        self._file, self._changes = file, changes
        self._topics, self._start = topics, start
        self._positions: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        """Every partition of the topics, at its start offset."""
        positions = {}
        for topic in self._topics:
            for p in range(self._file.partitions(topic)):
                tp = TopicPartition(topic, p)
                positions[tp] = self._start.get(tp, 0)
        self._positions = positions

    async def stop(self) -> None:
        """Nothing to release."""

    async def poll(self, timeout_ms: int = 1000) -> list[Record]:
        """New records of any partition (up to 5000 per partition); [] after ``timeout_ms``."""
        return await self._changes.poll_until(self._fetch, timeout_ms / 1000)

    def _fetch(self) -> list[Record]:
        batches = self._file.fetch_next(self._positions, list(self._positions))
        return list(chain.from_iterable(batches))

    async def position(self, tp: TopicPartition) -> int:
        """The next offset to read in ``tp``."""
        return self._positions[tp]

    async def end_offsets(self) -> dict[TopicPartition, int]:
        """The next offset to be written in every followed partition."""
        ends: dict[TopicPartition, int] = {}
        for topic in self._topics:
            for p, end in self._file.end_offsets(topic).items():
                ends[TopicPartition(topic, p)] = end
        return {tp: ends.get(tp, 0) for tp in self._positions}
