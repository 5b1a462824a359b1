"""What the log already says about jobs (attempts, terminal) and which jobs were cancelled.

One ``LogTail`` per worker process follows ``tabstream.events`` and ``tabstream.control`` (every
partition, from offset 0, no group) with a single long-lived reader and feeds both folds
continuously: ``JobLedger`` (job_id -> attempts, interrupted, terminal) and ``CancelWatch``.
Before a decision to start, retry or skip a job, ``sync`` captures the end offsets of both
topics at that moment and waits until the follower's *position* reached them, so a decision is
never made on a stale view; in the steady state that costs one ListOffsets round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from tabstream.adapters.bus.port import (
    BusUnavailable,
    EventLog,
    LogFollower,
    Record,
    TopicPartition,
)
from tabstream.common.logs import get_logger
from tabstream.schemas.events import (
    TERMINAL_TYPES,
    CancelRequested,
    JobInterrupted,
    JobStarted,
    ModelRegistered,
    TrialCompleted,
    UndecodableEvent,
    decode,
)

_log = get_logger(__name__)
RETRY_S = 1.0
POLL_MS = 1000
# A position can move past transaction markers without a poll returning records: recheck
# positions this often while waiting for a catch-up, not only after each batch.
RECHECK_S = 0.01
CATCH_UP_TIMEOUT_S = 120.0
_LEDGER_TYPES = frozenset(
    {
        b"JobStarted",
        b"JobInterrupted",
        b"ModelRegistered",
        b"TrialCompleted",
        *(t.encode() for t in TERMINAL_TYPES),
    }
)
_CONTROL_TYPES = frozenset({b"CancelRequested"})


class LogTail:
    """A long-lived follower of some topics that hands every record to its topic's fold."""

    def __init__(
        self,
        log: EventLog,
        *,
        catch_up_timeout_s: float = CATCH_UP_TIMEOUT_S,
        retry_s: float = RETRY_S,
    ) -> None:
        self._log = log
        self._routes: dict[str, Callable[[Record], None]] = {}
        self._applied: dict[TopicPartition, int] = {}
        self._follower: LogFollower | None = None
        self._ready = asyncio.Event()
        self._progress = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._timeout_s, self._retry_s = catch_up_timeout_s, retry_s

    def route(self, topic: str, apply: Callable[[Record], None]) -> None:
        """Send the records of ``topic`` to ``apply`` (before ``start``)."""
        self._routes[topic] = apply

    def start(self) -> None:
        """Start following in the background (it reconnects after failures)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="log-tail")

    async def stop(self) -> None:
        """Stop following."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def catch_up(self) -> None:
        """Return once every record committed before this call has been applied.

        Raises ``BusUnavailable`` when that does not happen within the timeout.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._ready.wait()
        except TimeoutError:
            raise BusUnavailable("the event log follower is not connected") from None
        ends = await self._end_offsets(deadline)
        behind = dict(ends)
        while True:
            follower = self._follower
            if follower is not None and self._ready.is_set():
                for tp, end in list(behind.items()):
                    if await follower.position(tp) >= end:
                        del behind[tp]
            if not behind:
                return
            left = deadline - loop.time()
            if left <= 0:
                raise BusUnavailable(f"the event log follower did not catch up: {behind}")
            progress = self._progress
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, RECHECK_S)):
                    await progress.wait()

    async def _end_offsets(self, deadline: float) -> dict[TopicPartition, int]:
        loop = asyncio.get_running_loop()
        while (follower := self._follower) is None:  # reconnecting
            if loop.time() > deadline:
                raise BusUnavailable("the event log follower is not connected")
            await asyncio.sleep(0.05)
        try:
            return await follower.end_offsets()
        except BusUnavailable:
            raise
        except Exception as exc:
            raise BusUnavailable(f"end offsets failed: {exc!r}") from exc

    async def _run(self) -> None:
        while True:
            follower = self._log.follower(list(self._routes), from_offsets=dict(self._applied))
            try:
                await follower.start()
                self._follower = follower
                self._ready.set()
                await self._follow(follower)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker down, topic missing: start over where we were
                _log.warning("log follower failed; retrying", error=repr(exc))
            finally:
                self._ready.clear()
                self._follower = None
                with contextlib.suppress(Exception):
                    await follower.stop()
            await asyncio.sleep(self._retry_s)

    async def _follow(self, follower: LogFollower) -> None:
        routes, applied = self._routes, self._applied
        while True:
            records = await follower.poll(timeout_ms=POLL_MS)
            for record in records:
                routes[record.topic](record)
                applied[TopicPartition(record.topic, record.partition)] = record.offset + 1
            self._progress.set()
            self._progress = asyncio.Event()


@dataclass
class JobHistory:
    """One job as the events topic tells it."""

    attempts: int = 0
    interrupted: set[int] = field(default_factory=set)
    terminal: str | None = None
    announced: set[tuple[int, int]] = field(default_factory=set)
    """(row, trial) of every TrialCompleted in the log (forgotten once the job has ended)."""

    @property
    def open_attempt(self) -> int | None:
        """The last started attempt when it has neither ended nor been marked interrupted."""
        if self.attempts and self.terminal is None and self.attempts not in self.interrupted:
            return self.attempts
        return None


class JobLedger:
    """In-memory job_id -> JobHistory folded from the events topic (fed by a ``LogTail``)."""

    def __init__(self, tail: LogTail, topic: str) -> None:
        self._tail = tail
        self._jobs: dict[str, JobHistory] = {}
        self._models: dict[str, tuple[str, str]] = {}
        self._families: dict[str, list[str]] = {}
        tail.route(topic, self.apply)

    async def sync(self, job_id: str) -> JobHistory:
        """Catch up on everything committed so far, then return the job's history."""
        await self._tail.catch_up()
        return self.get(job_id)

    def get(self, job_id: str) -> JobHistory:
        """The history known now (no I/O)."""
        return self._jobs.get(job_id) or JobHistory()

    def model(self, model_id: str) -> tuple[str, str] | None:
        """(tenant, sha256) of a registered model as its ModelRegistered event recorded it."""
        return self._models.get(model_id)

    def model_families(self, model_id: str) -> list[str]:
        """The families of a registered model ([] when unknown)."""
        return list(self._families.get(model_id, []))

    def apply(self, record: Record) -> None:
        """Fold one events record (records of other types are skipped by their header)."""
        kind = record.header("type")
        if kind is not None and kind not in _LEDGER_TYPES:
            return
        try:
            env = decode(record.value)
        except UndecodableEvent:
            return
        p = env.payload
        if isinstance(p, JobStarted):
            job = self._jobs.setdefault(str(p.job_id), JobHistory())
            job.attempts = max(job.attempts, p.attempt)
        elif isinstance(p, ModelRegistered):
            self._models[str(p.model_id)] = (env.tenant, p.sha256)
            self._families[str(p.model_id)] = list(p.families)
        elif isinstance(p, JobInterrupted):
            self._jobs.setdefault(str(p.job_id), JobHistory()).interrupted.add(p.lost_attempt)
        elif isinstance(p, TrialCompleted):
            job = self._jobs.setdefault(str(p.job_id), JobHistory())
            if job.terminal is None:
                job.announced.add((p.row, p.trial))
        elif env.type in TERMINAL_TYPES:
            job = self._jobs.setdefault(env.aggregate_id, JobHistory())
            job.terminal, job.announced = env.type, set()


class CancelWatch:
    """The set of jobs someone asked to cancel, folded from the control topic (fed by a
    ``LogTail``), with callbacks for running jobs."""

    def __init__(self, tail: LogTail, topic: str) -> None:
        self._tail = tail
        self.cancelled: set[str] = set()
        self._listeners: dict[str, list[Callable[[], None]]] = {}
        tail.route(topic, self.apply)

    async def sync(self) -> None:
        """Catch up on everything committed so far (before deciding about a queued job)."""
        await self._tail.catch_up()

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

    def apply(self, record: Record) -> None:
        """Fold one control record."""
        kind = record.header("type")
        if kind is not None and kind not in _CONTROL_TYPES:
            return
        try:
            env = decode(record.value)
        except UndecodableEvent:
            return
        if isinstance(env.payload, CancelRequested):
            job_id = str(env.payload.job_id)
            self.cancelled.add(job_id)
            for callback in self._listeners.pop(job_id, []):
                callback()


def worker_tail(
    log: EventLog, events: str, control: str, **kw: float
) -> tuple[LogTail, JobLedger, CancelWatch]:
    """The tail of ``events`` and ``control`` with the ledger and cancel watch it feeds."""
    tail = LogTail(log, **kw)
    return tail, JobLedger(tail, events), CancelWatch(tail, control)
