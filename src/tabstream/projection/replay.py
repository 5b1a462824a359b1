"""Replaying the log: audit replay (decode and verify every envelope of a topic), and rebuild
(fold it from offset 0 into a fresh store)."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabstream.adapters.bus.port import EventLog, Record, TopicPartition
from tabstream.projection.batch import Item, Run, items_of
from tabstream.projection.fold import job_of
from tabstream.projection.forked_fold import fold_in_child
from tabstream.projection.sqlite_store import gc_paused, open_for_rebuild
from tabstream.schemas.events import Envelope, decode


@dataclass(frozen=True)
class ReplayItem:
    """One record of the log with its decoded (upcast) envelope, or why it is undecodable."""

    record: Record
    envelope: Envelope | None
    error: str | None = None


def decode_record(record: Record) -> ReplayItem:
    """Decode a record's envelope (upcasting old versions); never raises."""
    try:
        return ReplayItem(record, decode(record.value))
    except Exception as exc:  # undecodable: reported, not fatal
        return ReplayItem(record, None, f"{type(exc).__name__}: {exc}"[:2000])


def to_item(item: ReplayItem) -> Item:
    """The store's (topic, partition, offset, envelope) tuple of a replayed record."""
    r = item.record
    return (r.topic, r.partition, r.offset, item.envelope)


def _matches(item: ReplayItem, job: str | None) -> bool:
    if job is None:
        return True
    if item.envelope is None:
        return item.record.key == job
    return job_of(item.envelope) == job or item.envelope.aggregate_id == job


async def replay(
    log: EventLog,
    topics: str | Sequence[str],
    job: str | None = None,
    from_offset: int = 0,
) -> AsyncIterator[ReplayItem]:
    """Every committed record of ``topics`` (one topic after the other; within a topic in
    offset order per partition, partitions possibly interleaved, see ``EventLog.read``) from
    ``from_offset`` to the current end, decoded; only ``job``'s if given."""
    for topic in [topics] if isinstance(topics, str) else topics:
        stream = log.read(topic, from_offset=from_offset, to_end=True)
        try:
            async for record in stream:
                item = decode_record(record)
                if _matches(item, job):
                    yield item
        finally:
            await _close(stream)


async def _close(stream: AsyncIterator[Any]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


async def rebuild(
    log: EventLog,
    path: Path | str,
    topics: Sequence[str],
    until: Mapping[TopicPartition, int] | None = None,
    batch_size: int = 20_000,
    *,
    fork: bool | None = None,
) -> str:
    """Fold ``topics`` from offset 0 into a fresh store at ``path`` and return its digest.

    Every partition of ``topics`` is read at once by one ``LogFollower`` (one connection and
    one start-up, the topics interleaved: the fold does not depend on how streams interleave,
    DESIGN.md §4) up to the end offsets seen when it started. With ``until`` (e.g. a live
    store's ``offsets()``) each partition stops before that offset instead (partitions absent
    from it are skipped), so the result is comparable with that store.

    Records are folded ``batch_size`` at a time, each batch one transaction of state and
    offsets, by a forked child process while this one goes on reading (``fold_in_child``;
    ``fork`` forces or forbids it, by default it is used where forking is safe: on Linux,
    from a process with one thread). The store is built in ``<path>.rebuild`` for speed
    rather than durability (no fsync per batch), then synced and renamed over ``path``: a
    crash never leaves a half-built store at ``path``, and a crashed rebuild is simply redone.
    """
    if fork is None:
        fork = sys.platform == "linux" and threading.active_count() == 1
    fold = fold_in_child if fork else fold_here
    path = Path(path)
    fresh = path.with_name(path.name + ".rebuild")
    _remove_store(fresh)
    try:
        with gc_paused():
            batches = _batches(log, topics, until, batch_size)
            async with contextlib.aclosing(batches):
                digest = await fold(batches, fresh)
    except BaseException:
        _remove_store(fresh)
        raise
    _fsync(fresh)
    _remove_store(path, main=False)  # a stale -wal of the old file must not meet the new one
    os.replace(fresh, path)
    _fsync(path.parent)
    return digest


async def fold_here(batches: AsyncIterator[list[Run]], path: Path) -> str:
    """Fold ``batches`` into a fresh store at ``path`` in this process; the store's digest."""
    store = open_for_rebuild(path)
    try:
        async for runs in batches:
            store.apply_batch(items_of(runs))
        return store.digest()
    finally:
        store.close()


async def _batches(
    log: EventLog,
    topics: Sequence[str],
    until: Mapping[TopicPartition, int] | None,
    batch_size: int,
) -> AsyncGenerator[list[Run], None]:
    """The log read until every partition reached its end, ``batch_size`` records at a time
    (still encoded: they are decoded where they are folded). The first and the last batch
    are smaller, so that folding (in a child) starts sooner and has less left at the end."""
    follower = log.follower(topics)
    await follower.start()
    try:
        ends = await follower.end_offsets()
        if until is not None:
            ends = {tp: min(end, until.get(tp, 0)) for tp, end in ends.items()}
        left = {tp: end for tp, end in ends.items() if end > 0}
        pending: list[Record] = []
        small = max(1, batch_size // 8)
        size = small
        while left:
            pending += await follower.poll()
            for tp, end in list(left.items()):
                if await follower.position(tp) >= end:
                    del left[tp]
            while len(pending) >= size or (pending and not left):
                n = size
                if not left and len(pending) <= size and len(pending) > 2 * small:
                    n = len(pending) - small
                yield runs_of(pending[:n], ends)
                del pending[:n]
                size = batch_size
    finally:
        await follower.stop()


def runs_of(records: Sequence[Record], until: Mapping[TopicPartition, int]) -> list[Run]:
    """``records`` as runs of one partition each, without those at or past ``until``'s offset
    of their partition (all of a partition absent from it)."""
    runs: list[Run] = []
    topic, partition, end = "", -1, 0
    offsets: list[int] = []
    values: list[bytes] = []
    for r in records:
        if r.partition != partition or r.topic != topic:
            topic, partition = r.topic, r.partition
            end = until.get(TopicPartition(topic, partition), 0)
            offsets, values = [], []
            runs.append((topic, partition, offsets, values))
        if r.offset < end:
            offsets.append(r.offset)
            values.append(r.value)
    return runs


def _remove_store(path: Path, *, main: bool = True) -> None:
    for suffix in ("", "-wal", "-shm", "-journal") if main else ("-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    """Flush a file (or a directory's entries) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
