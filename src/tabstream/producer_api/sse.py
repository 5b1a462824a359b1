"""Server-sent events for a job: history then live tail, resumable with Last-Event-ID."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from tabstream.adapters.bus.port import EventLog
from tabstream.producer_api.history import JobEvent, follow, job_history


def frame(index: int, event: JobEvent) -> bytes:
    """One SSE frame: ``id`` is the event's 1-based index in the job's history."""
    data = json.dumps(event.envelope, separators=(",", ":"))
    return f"id: {index}\nevent: {event.type}\ndata: {data}\n\n".encode()


def parse_last_event_id(value: str | None) -> int:
    """The index to resume after (0 = from the start); junk counts as 0."""
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


async def stream(
    log: EventLog,
    job_id: str,
    topics: list[str],
    events_topic: str,
    after: int,
    heartbeat_s: float,
) -> AsyncIterator[bytes]:
    """SSE frames after index ``after``; ends after the terminal event."""
    yield b": stream open\n\n"
    history = await job_history(log, job_id, topics, events_topic)
    index = 0
    for event in history.events:
        index += 1
        if index > after:
            yield frame(index, event)
        if event.terminal:
            return
    live = follow(
        log, job_id, events_topic, history.events_partition, history.follow_from, heartbeat_s
    )
    async for item in live:
        if item is None:
            yield b": heartbeat\n\n"
            continue
        index += 1
        if index > after:
            yield frame(index, item)
        if item.terminal:
            return
