"""The worker: N slots in one consumer group, one log tail feeding the job ledger and the
cancel watch, a shutdown bounded by ``WorkerConfig.shutdown_s`` whatever the broker does."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable

from tabstream.adapters.bus.port import BusUnavailable, EventLog
from tabstream.common.logs import get_logger
from tabstream.consumer.config import Decrypt, WorkerConfig
from tabstream.consumer.ledger import worker_tail
from tabstream.consumer.runner import JobContext
from tabstream.consumer.slot import Slot
from tabstream.consumer.worker_topics import WorkerTopics
from tabstream.schemas.events import Producer

_log = get_logger(__name__)
CONNECT_RETRY_S = 2.0
SIGNALS = (signal.SIGTERM, signal.SIGINT)


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
        self._starting: asyncio.Task[None] | None = None
        self._forced = asyncio.Event()

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
        """Connect, follow the events and control topics, start every slot (nothing of that
        when shutdown came while connecting)."""
        await self.connect()
        if self.shutdown.is_set():
            return
        self.tail.start()
        self._tasks = [
            asyncio.create_task(slot.run(), name=f"slot{i}") for i, slot in enumerate(self.slots)
        ]
        _log.info(
            "worker started",
            pool=self.config.pool,
            slots=self.config.slots,
            device=self.config.device_label,
            group=self.topics.group,
        )

    async def stop(self, *, close_log: bool = False) -> bool:
        """Stop taking work, interrupt running children, leave the group, stop the tail (and
        close the log when ``close_log``), within ``config.shutdown_s`` or until ``force()``.

        True when every step ended in time. False when shutdown was given up: a warning names
        the steps left, they are cancelled and not awaited (a dead broker may never answer),
        and the caller should exit the process; children still running then see their stdin
        close and exit by themselves (``bootstrap.child``)."""
        self.shutdown.set()
        done: list[str] = []
        steps = asyncio.create_task(self._stop_steps(done, close_log), name="worker-stop")
        forced = asyncio.create_task(self._forced.wait())
        await asyncio.wait(
            {steps, forced}, timeout=self.config.shutdown_s, return_when=asyncio.FIRST_COMPLETED
        )
        forced.cancel()
        if steps.done():
            _log.info("worker stopped", instance=self.config.instance)
            return True
        ended = {*done, *(task.get_name() for task in self._tasks if task.done())}
        left = [name for name, _ in self._stop_plan(close_log) if name not in ended]
        self._abandon(steps)
        _log.warning(
            "shutdown given up; exiting without it",
            left=left,
            shutdown_s=self.config.shutdown_s,
            forced=self._forced.is_set(),
        )
        return False

    def _abandon(self, steps: asyncio.Task[None]) -> None:
        """Cancel what shutdown left running, without waiting for it."""
        for task in (steps, self._starting, *self._tasks):
            if task is not None:
                task.cancel()

    def force(self) -> None:
        """End a ``stop()`` in progress now (a second SIGTERM/SIGINT does this)."""
        self._forced.set()

    async def _stop_steps(self, done: list[str], close_log: bool) -> None:
        """Run the shutdown steps in order, recording each one that ended in ``done``."""
        for name, step in self._stop_plan(close_log):
            try:
                await step()
            except Exception:
                _log.exception("shutdown step failed", step=name)
            done.append(name)

    def _stop_plan(self, close_log: bool) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        """(name, step) in shutdown order; a slot ends its job and leaves the group itself."""
        plan: list[tuple[str, Callable[[], Awaitable[None]]]] = [("connect", self._end_start)]
        plan += [(task.get_name(), _settled(task)) for task in self._tasks]
        plan.append(("log tail", self.tail.stop))
        if close_log:
            plan.append(("event log", self.log.close))
        return plan

    async def _end_start(self) -> None:
        """Cancel a ``start()`` still connecting (only ``run_forever`` starts it as a task)."""
        task = self._starting
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    async def wait(self) -> None:
        """Until every slot has ended (a slot ends only on shutdown or a fatal error)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def run_forever(self, *, close_log: bool = False) -> bool:
        """Start, run until SIGTERM/SIGINT (or until every slot ended), then ``stop()``.

        A signal while the log is still unreachable ends the connect wait at once. A second
        signal forces the stop. Returns ``stop()``'s answer: False means shutdown was given up
        after ``config.shutdown_s`` (or forced) and the process should exit now, non-zero."""
        loop = asyncio.get_running_loop()
        for sig in SIGNALS:
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            await self._until_stopped()
        finally:
            clean = await self.stop(close_log=close_log)
            for sig in SIGNALS:
                loop.remove_signal_handler(sig)
        return clean

    def _on_signal(self, sig: signal.Signals) -> None:
        """First signal: shut down (bounded); a second one: give the shutdown up now."""
        if self.shutdown.is_set():
            _log.warning("second signal; forcing shutdown", signal=sig.name)
            self.force()
            return
        _log.info("stopping", signal=sig.name, shutdown_s=self.config.shutdown_s)
        self.shutdown.set()

    async def _until_stopped(self) -> None:
        """Until shutdown is asked for, or start failed, or every slot ended."""
        self._starting = asyncio.create_task(self.start(), name="worker-start")
        stop = asyncio.create_task(self.shutdown.wait())
        try:
            await asyncio.wait({self._starting, stop}, return_when=asyncio.FIRST_COMPLETED)
            if self._starting.done():
                self._starting.result()
                if self._tasks:
                    # asyncio.wait, unlike gather, does not cancel the slots when cancelled
                    slots = asyncio.ensure_future(asyncio.wait(self._tasks))
                    await asyncio.wait({slots, stop}, return_when=asyncio.FIRST_COMPLETED)
                    slots.cancel()
        finally:
            stop.cancel()


def _settled(task: asyncio.Task[None]) -> Callable[[], Awaitable[None]]:
    """A step that waits for ``task`` to end, whatever its outcome (cancelling the step does
    not cancel ``task``)."""

    async def step() -> None:
        await asyncio.wait([task])
        if not task.cancelled() and (exc := task.exception()) is not None:
            _log.error("slot ended with an error", slot=task.get_name(), error=repr(exc))

    return step
