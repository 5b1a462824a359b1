"""What the log already says about jobs (attempts, terminal) and which jobs were cancelled.

Both read the log from offset 0 without a group. ``JobLedger.sync(job_id)`` catches up on the
one events partition that holds the job (key = job_id) up to its end offset, so a decision to
start, retry or skip a job is never made on a stale view.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from tabstream.adapters.bus.partitioner import partition_for
from tabstream.adapters.bus.port import EventLog, Record
from tabstream.logs import get_logger
from tabstream.schemas.events import (
    TERMINAL_TYPES,
    CancelRequested,
    JobInterrupted,
    JobStarted,
    UndecodableEvent,
    decode,
)

_log = get_logger(__name__)


@dataclass
class JobHistory:
    """One job as the events topic tells it."""

    attempts: int = 0
    interrupted: set[int] = field(default_factory=set)
    terminal: str | None = None

    @property
    def open_attempt(self) -> int | None:
        """The last started attempt when it has neither ended nor been marked interrupted."""
        if self.attempts and self.terminal is None and self.attempts not in self.interrupted:
            return self.attempts
        return None


class JobLedger:
    """In-memory job_id -> JobHistory folded from the events topic."""

    def __init__(self, log: EventLog, topic: str) -> None:
        self._log, self._topic = log, topic
        self._jobs: dict[str, JobHistory] = {}
        self._positions: dict[int, int] = {}
        self._partitions = 0
        self._lock = asyncio.Lock()

    async def sync(self, job_id: str) -> JobHistory:
        """Catch up on the job's partition, then return its history."""
        async with self._lock:
            if not self._partitions:
                self._partitions = await self._log.partitions(self._topic)
            p = partition_for(job_id, self._partitions)
            start = self._positions.get(p, 0)
            async for record in self._log.read(self._topic, partitions=[p], from_offset=start):
                self._apply(record)
                self._positions[p] = record.offset + 1
        return self.get(job_id)

    def get(self, job_id: str) -> JobHistory:
        """The history known now (no I/O)."""
        return self._jobs.get(job_id) or JobHistory()

    def _apply(self, record: Record) -> None:
        try:
            env = decode(record.value)
        except UndecodableEvent:
            return
        p = env.payload
        if isinstance(p, JobStarted):
            job = self._jobs.setdefault(str(p.job_id), JobHistory())
            job.attempts = max(job.attempts, p.attempt)
        elif isinstance(p, JobInterrupted):
            self._jobs.setdefault(str(p.job_id), JobHistory()).interrupted.add(p.lost_attempt)
        elif env.type in TERMINAL_TYPES:
            self._jobs.setdefault(env.aggregate_id, JobHistory()).terminal = env.type


class CancelWatch:
    """Follows the control topic from offset 0: the set of jobs someone asked to cancel."""

    def __init__(self, log: EventLog, topic: str) -> None:
        self._log, self._topic = log, topic
        self.cancelled: set[str] = set()
        self._listeners: dict[str, list[Callable[[], None]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._position: dict[int, int] = {}

    def start(self) -> None:
        """Start following in the background."""
        self._task = asyncio.create_task(self._follow(), name="cancel-watch")

    async def stop(self) -> None:
        """Stop following."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def sync(self) -> None:
        """Read the control topic up to its end now (before deciding about a queued job)."""
        for p in range(await self._log.partitions(self._topic)):
            start = self._position.get(p, 0)
            async for record in self._log.read(self._topic, partitions=[p], from_offset=start):
                self._apply(record)

    def on_cancel(self, job_id: str, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` once ``job_id`` is cancelled (now if it already is); returns an
        unsubscribe function."""
        if job_id in self.cancelled:
            callback()
            return lambda: None
        listeners = self._listeners.setdefault(job_id, [])
        listeners.append(callback)

        def unsubscribe() -> None:
            if callback in listeners:
                listeners.remove(callback)

        return unsubscribe

    async def _follow(self) -> None:
        while True:
            try:
                async for record in self._log.read(self._topic, to_end=False):
                    self._apply(record)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker down: retry
                _log.warning("control follower failed; retrying", error=repr(exc))
                await asyncio.sleep(1.0)

    def _apply(self, record: Record) -> None:
        self._position[record.partition] = max(
            self._position.get(record.partition, 0), record.offset + 1
        )
        try:
            env = decode(record.value)
        except UndecodableEvent:
            return
        if isinstance(env.payload, CancelRequested):
            job_id = str(env.payload.job_id)
            self.cancelled.add(job_id)
            for callback in self._listeners.pop(job_id, []):
                callback()
