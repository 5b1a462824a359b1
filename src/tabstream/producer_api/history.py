"""A job's records from the log: full history (commands, control, events) and a live tail.

Only the partitions the job's key maps to are read (murmur2, as the producer picked them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from tabstream.adapters.bus.partitioner import partition_for
from tabstream.adapters.bus.port import EventLog, Record
from tabstream.schemas import TERMINAL_TYPES, UndecodableEvent, decode


@dataclass(frozen=True)
class JobEvent:
    """One decoded envelope of a job and where it lives in the log."""

    topic: str
    partition: int
    offset: int
    envelope: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.envelope["type"])

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_TYPES


@dataclass(frozen=True)
class History:
    """A job's events in order, and the events-partition offset to follow from."""

    events: list[JobEvent]
    follow_from: int
    events_partition: int


async def job_history(log: EventLog, job_id: str, topics: list[str], events_topic: str) -> History:
    """Every record keyed ``job_id`` in ``topics`` (commands, control, events), in time order."""
    found: list[JobEvent] = []
    follow_from, events_partition = 0, 0
    for topic in topics:
        partition = partition_for(job_id, await log.partitions(topic))
        async for record in log.read(topic, partitions=[partition]):
            if topic == events_topic:
                follow_from, events_partition = record.offset + 1, partition
            event = _decode(record, job_id)
            if event is not None:
                found.append(event)
        if topic == events_topic:
            events_partition = partition
    found.sort(key=lambda e: (e.envelope["occurred_at"], topics.index(e.topic), e.offset))
    return History(found, follow_from, events_partition)


def _decode(record: Record, job_id: str) -> JobEvent | None:
    if record.key != job_id:
        return None
    try:
        envelope = json.loads(decode(record.value).model_dump_json())
    except UndecodableEvent:
        return None
    payload = envelope.get("payload", {})
    if "encrypted_headers" in payload:
        payload["encrypted_headers"] = "***" if payload["encrypted_headers"] else None
    return JobEvent(record.topic, record.partition, record.offset, envelope)


async def follow(
    log: EventLog, job_id: str, topic: str, partition: int, start: int, heartbeat_s: float
) -> AsyncIterator[JobEvent | None]:
    """Live events of ``job_id`` from ``start``; yields None as a heartbeat when idle."""
    queue: asyncio.Queue[JobEvent | BaseException] = asyncio.Queue(maxsize=1000)

    async def pump() -> None:
        try:
            async for record in log.read(
                topic, partitions=[partition], from_offset=start, to_end=False
            ):
                event = _decode(record, job_id)
                if event is not None:
                    await queue.put(event)
        except Exception as exc:
            await queue.put(exc)

    task = asyncio.create_task(pump())
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), heartbeat_s)
            except TimeoutError:
                yield None
                continue
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
