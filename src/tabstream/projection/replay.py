"""Audit replay (decode and verify every envelope of a topic) and rebuild into a fresh store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabstream.adapters.bus.port import EventLog, Record, TopicPartition
from tabstream.projection.fold import job_of
from tabstream.projection.store import Item, ProjectionStore, gc_paused
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
    batch_size: int = 5000,
) -> str:
    """Fold ``topics`` from offset 0 into a fresh store at ``path`` and return its digest.

    With ``until`` (e.g. a live store's ``offsets()``) each partition stops before that offset
    (partitions absent from it are skipped), so the result is comparable with that store.
    The fresh store is written with ``synchronous=OFF``: a crashed rebuild is simply redone.
    """
    _remove_store(Path(path))
    store = ProjectionStore(path, synchronous="OFF")
    try:
        with gc_paused():
            await _fold_topics(log, store, topics, until, batch_size)
        return store.digest()
    finally:
        store.close()


async def _fold_topics(
    log: EventLog,
    store: ProjectionStore,
    topics: Sequence[str],
    until: Mapping[TopicPartition, int] | None,
    batch_size: int,
) -> None:
    """Read whole batches, decode each envelope once, fold and write ``batch_size`` at a time.

    (Applying in a thread while the next batch is read was tried: with two busy cores it was
    no faster, as decoding and folding hold the GIL and only SQLite's own work overlaps.)"""
    for topic in topics:
        pending: list[Item] = []
        batches = log.read_batches(topic, to_end=True)
        try:
            async for records in batches:
                pending += decode_items(records, until)
                if len(pending) >= batch_size:
                    store.apply_batch(pending)
                    pending = []
        finally:
            await _close(batches)
        if pending:
            store.apply_batch(pending)


def decode_items(
    records: Sequence[Record], until: Mapping[TopicPartition, int] | None = None
) -> list[Item]:
    """The store's items of ``records`` (each envelope decoded and validated once; None when
    undecodable), skipping records at or past ``until``'s offset of their partition."""
    items: list[Item] = []
    append = items.append
    for r in records:
        if until is not None and r.offset >= until.get(r.tp, 0):
            continue
        try:
            env: Envelope | None = decode(r.value)
        except Exception:  # undecodable: counted by the store, not fatal
            env = None
        append((r.topic, r.partition, r.offset, env))
    return items


def _remove_store(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
