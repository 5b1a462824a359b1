"""The projection service: follow the log from the store's own offsets and fold it in batches.

No consumer group: the store is the source of truth for positions (state and offsets are
committed together), so each partition is read from the store's next offset with group-less
``read_committed`` readers (``EventLog.read(..., to_end=False)``), merged through a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections import defaultdict
from collections.abc import Callable, Sequence

from tabstream.adapters.bus.port import EventLog, Record, TopicPartition
from tabstream.common.deadlines import Deadlines
from tabstream.common.logs import get_logger
from tabstream.projection.batch import Item
from tabstream.projection.replay import decode_record, to_item
from tabstream.projection.sqlite_store import ProjectionStore
from tabstream.schemas.events import Envelope
from tabstream.schemas.topics import Topics

_log = get_logger(__name__)
_RETRY_S = 1.0
QUEUED_BATCHES = 64
"""Fetched batches waiting to be folded, at most (then the readers wait)."""
MAX_HANDED_OVER = 10_000
"""Envelopes handed over by ``wait_applied`` callers, at most (beyond, records are decoded)."""


class ProjectionService:
    """Folds events, control and every pool's commands topic into a ``ProjectionStore``."""

    def __init__(
        self,
        log: EventLog,
        store: ProjectionStore,
        topics: Topics | None = None,
        pools: Sequence[str] = ("cpu",),
        *,
        batch_size: int = 2000,
        create_topics: bool = True,
        observers: Sequence[Callable[[Envelope], None]] = (),
    ) -> None:
        self.log, self.store = log, store
        self.topics = topics or Topics()
        self.names = self.topics.projection_topics(pools)
        self._pools = list(pools)
        self._batch_size = batch_size
        self._create = create_topics
        self._queue: asyncio.Queue[list[Record]] = asyncio.Queue(maxsize=QUEUED_BATCHES)
        self._waiters: dict[TopicPartition, list[tuple[int, int, asyncio.Future[None]]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._published: dict[tuple[str, int, int], Envelope] = {}
        self._deadlines = Deadlines(TimeoutError)
        self._fold_soon = False
        self.undecodable = 0
        self.handed_over = 0
        self.applied = 0
        self._observers = list(observers)

    async def start(self) -> None:
        """Create missing topics, then start following from the store's offsets."""
        if self._tasks:
            return
        if self._create:
            await self.log.create_topics(self.topics.partition_counts(self._pools, dlq=False))
        await self._start_readers()
        self._tasks.append(asyncio.create_task(self._apply_loop(), name="projection-apply"))

    async def stop(self) -> None:
        """Stop reading and applying (what was applied stays applied)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def run(self) -> None:
        """Start and follow the log until cancelled."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def wait_applied(
        self,
        topic: str,
        partition: int,
        offset: int,
        timeout_s: float,
        envelope: Envelope | None = None,
    ) -> bool:
        """Wait until the record at ``offset`` of ``topic``/``partition`` is applied (True) or
        ``timeout_s`` passed (False; a coarse deadline, see ``tabstream.common.deadlines``). Applied
        means committed to the store, so any read of the store afterwards sees it.

        ``envelope``: the record's envelope, when the caller published the record itself (the
        log acknowledged it at that position); it is folded as it is, without decoding the
        record's bytes, if the record has not been folded yet."""
        if self.store.next_offset(topic, partition) > offset:
            return True
        position = (topic, partition, offset)
        if envelope is not None and len(self._published) < MAX_HANDED_OVER:
            self._published[position] = envelope
            if not self._fold_soon:
                self._fold_soon = True
                asyncio.get_running_loop().call_soon(self._fold_handed_over)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heap = self._waiters.setdefault(TopicPartition(topic, partition), [])
        heapq.heappush(heap, (offset, id(waiter), waiter))
        self._deadlines.watch(waiter, timeout_s)
        try:
            await waiter
        except TimeoutError:
            return self.store.next_offset(topic, partition) > offset
        finally:
            self._published.pop(position, None)
        return True

    def _fold_handed_over(self) -> None:
        """Fold the handed-over envelopes that continue their partition's applied offsets.

        The log acknowledged them at those positions, so they are the records a read would
        return next: folding them now spares the wait for the fetch (and the fetched copies
        are then skipped before decoding). A gap (a record from another producer) leaves the
        rest to the readers."""
        self._fold_soon = False
        items: list[Item] = []
        for topic, partition in {(t, p) for t, p, _ in self._published}:
            offset = self.store.next_offset(topic, partition)
            while (envelope := self._published.pop((topic, partition, offset), None)) is not None:
                items.append((topic, partition, offset, envelope))
                offset += 1
        if not items:
            return
        try:
            result = self.store.apply_batch(items)
        except Exception:
            _log.exception("projection: folding handed-over envelopes failed; the readers will")
            return
        self.handed_over += len(items)
        self.applied += result.applied
        self._release({TopicPartition(t, p) for t, p, _, _ in items})
        self._notify(items)

    def _release(self, touched: set[TopicPartition]) -> None:
        """Wake the waiters of ``touched`` partitions whose offset is now applied."""
        for tp in touched:
            heap = self._waiters.get(tp)
            applied_to = self.store.next_offset(tp.topic, tp.partition)
            while heap and heap[0][0] < applied_to:
                waiter = heapq.heappop(heap)[2]
                if not waiter.done():
                    waiter.set_result(None)

    async def lag(self) -> dict[TopicPartition, int]:
        """Records not yet applied, per partition (end offset minus the store's next offset)."""
        out: dict[TopicPartition, int] = {}
        for topic in self.names:
            for partition, end in (await self.log.end_offsets(topic)).items():
                out[TopicPartition(topic, partition)] = max(
                    0, end - self.store.next_offset(topic, partition)
                )
        return out

    async def _start_readers(self) -> None:
        for topic in self.names:
            n = await self.log.partitions(topic)
            positions = {p: self.store.next_offset(topic, p) for p in range(n)}
            task = asyncio.create_task(self._pump(topic, positions), name=f"projection-{topic}")
            self._tasks.append(task)

    async def _pump(self, topic: str, positions: dict[int, int]) -> None:
        """Follow ``topic``; after a read error, resume every partition where it stopped."""
        while True:
            groups: dict[int, list[int]] = defaultdict(list)
            for partition, offset in positions.items():
                groups[offset].append(partition)
            try:
                async with asyncio.TaskGroup() as tg:
                    for offset, parts in groups.items():
                        tg.create_task(self._follow(topic, parts, offset, positions))
            except Exception:
                _log.exception("projection read failed; retrying", topic=topic)
                await asyncio.sleep(_RETRY_S)

    async def _follow(
        self, topic: str, partitions: list[int], offset: int, positions: dict[int, int]
    ) -> None:
        async for batch in self.log.read_batches(
            topic, partitions=partitions, from_offset=offset, to_end=False
        ):
            await self._queue.put(batch)
            for record in batch:
                positions[record.partition] = record.offset + 1

    async def _apply_loop(self) -> None:
        while True:
            records = list(await self._queue.get())
            while len(records) < self._batch_size and not self._queue.empty():
                records.extend(self._queue.get_nowait())
            records = [
                r for r in records if r.offset >= self.store.next_offset(r.topic, r.partition)
            ]
            if not records:
                continue
            try:
                items = [self._item(r) for r in records]
                result = self.store.apply_batch(items)
            except Exception:
                _log.exception("projection batch failed; resuming from stored offsets")
                await self._resync()
                continue
            self.applied += result.applied
            self._release({TopicPartition(r.topic, r.partition) for r in records})
            self._notify(items)

    def _notify(self, items: list[Item]) -> None:
        """Pass each folded envelope to the observers (metrics); their errors are logged."""
        for observe in self._observers:
            try:
                for _, _, _, env in items:
                    if env is not None:
                        observe(env)
            except Exception:
                _log.exception("projection observer failed")

    async def _resync(self) -> None:
        readers = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in readers:
            task.cancel()
        for task in readers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = [t for t in self._tasks if t not in readers]
        while not self._queue.empty():
            self._queue.get_nowait()
        await asyncio.sleep(_RETRY_S)
        await self._start_readers()

    def _item(self, record: Record) -> Item:
        own = self._published.pop((record.topic, record.partition, record.offset), None)
        if own is not None:
            self.handed_over += 1
            return (record.topic, record.partition, record.offset, own)
        item = decode_record(record)
        if item.error is not None:
            self.undecodable += 1
            _log.warning(
                "undecodable record skipped",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                error=item.error[:500],
            )
        return to_item(item)
