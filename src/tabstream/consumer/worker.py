"""The worker: N slots in one consumer group, one log tail feeding the job ledger and the
cancel watch, clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from tabstream.adapters.bus.port import BusUnavailable, EventLog
from tabstream.consumer.config import Decrypt, WorkerConfig
from tabstream.consumer.ledger import worker_tail
from tabstream.consumer.runner import JobContext
from tabstream.consumer.slot import Slot
from tabstream.consumer.topics import WorkerTopics
from tabstream.logs import get_logger
from tabstream.schemas.events import Producer

_log = get_logger(__name__)
CONNECT_RETRY_S = 2.0


class Worker:
    """Runs ``config.slots`` slots on ``log`` until ``stop()`` (or SIGTERM with ``run_forever``)."""

    def __init__(
        self,
        log: EventLog,
        config: WorkerConfig,
        *,
        decrypt: Decrypt | None = None,
        create_topics: bool = True,
    ) -> None:
        self.log, self.config = log, config
        self.topics = WorkerTopics(config.prefix, config.pool)
        self.tail, self.ledger, self.cancels = worker_tail(
            log, self.topics.events, self.topics.control
        )
        self.shutdown = asyncio.Event()
        self.slots = [Slot(self._context(i, decrypt)) for i in range(config.slots)]
        self._create_topics = create_topics
        self._tasks: list[asyncio.Task[None]] = []

    def _context(self, index: int, decrypt: Decrypt | None) -> JobContext:
        name = f"{self.config.instance}-slot{index}"
        consumer = self.log.consumer(
            self.topics.group,
            [self.topics.commands],
            instance_id=name if self.config.static_membership else None,
            max_poll_interval_ms=self.config.max_poll_interval_ms,
            session_timeout_ms=self.config.session_timeout_ms,
        )
        return JobContext(
            log=self.log,
            consumer=consumer,
            config=self.config,
            topics=self.topics,
            ledger=self.ledger,
            cancels=self.cancels,
            producer=Producer(service="worker", instance=name),
            decrypt=decrypt,
            shutdown=self.shutdown,
        )

    async def connect(self) -> None:
        """Open the log (and create missing topics), retrying while it is unavailable: a worker
        started before its broker waits for it instead of exiting. Ends early on shutdown."""
        while not self.shutdown.is_set():
            try:
                await self.log.start()
                if self._create_topics:
                    await self.log.create_topics(self.topics.partition_counts())
                return
            except (BusUnavailable, OSError) as exc:
                _log.warning("event log unavailable; retrying", error=str(exc)[:300])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.shutdown.wait(), CONNECT_RETRY_S)

    async def start(self) -> None:
        """Connect, follow the events and control topics, start every slot."""
        await self.connect()
        self.tail.start()
        self._tasks = [
            asyncio.create_task(slot.run(), name=f"slot{i}") for i, slot in enumerate(self.slots)
        ]
        _log.info("worker started", pool=self.config.pool, slots=self.config.slots,
                  device=self.config.device_label, group=self.topics.group)  # fmt: skip

    async def stop(self) -> None:
        """Stop taking work, interrupt running children, leave the group."""
        self.shutdown.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.tail.stop()
        _log.info("worker stopped", instance=self.config.instance)

    async def wait(self) -> None:
        """Until every slot has ended (a slot ends only on shutdown or a fatal error)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def run_forever(self) -> None:
        """Start, then run until SIGTERM/SIGINT; exits after a clean ``stop()``."""
        loop = asyncio.get_running_loop()
        stop_requested = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop_requested.set)
        await self.start()
        waiter = asyncio.create_task(stop_requested.wait())
        slots = asyncio.create_task(self.wait())
        await asyncio.wait({waiter, slots}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        await self.stop()
