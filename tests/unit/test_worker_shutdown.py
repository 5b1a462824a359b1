"""Worker shutdown is bounded by ``WorkerConfig.shutdown_s`` whatever the log does: a log that
never answers while connecting, a log that went down mid-job, a close that never returns, and
a second signal that forces the stop."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tabstream.adapters.bus.embedded import EmbeddedEventLog
from tabstream.adapters.bus.port import BusUnavailable, OutgoingRecord, Position
from tabstream.consumer import Worker, WorkerConfig, WorkerTopics
from tabstream.consumer import worker as worker_module
from tests.faults.processes import children_of, wait_until
from tests.faults.worker_support import fake_child, submit, wait_event, write_dataset

MARGIN_S = 3.0


class TroubledLog(EmbeddedEventLog):
    """An embedded log that can hang on start or close, or refuse publishes like a dead broker."""

    def __init__(self, path: Path, *, hang_start: bool = False, hang_close: bool = False) -> None:
        super().__init__(path)
        self.hang_start, self.hang_close, self.down = hang_start, hang_close, False
        self.entered: set[str] = set()

    async def start(self) -> None:
        self.entered.add("start")
        if self.hang_start:
            await asyncio.Event().wait()
        await super().start()

    async def close(self) -> None:
        self.entered.add("close")
        if self.hang_close:
            await asyncio.Event().wait()
        await super().close()

    async def publish(self, record: OutgoingRecord) -> Position:
        if self.down:
            raise BusUnavailable("broker down")
        return await super().publish(record)


class Recorder:
    """Stands in for the worker module's logger: keeps (level, event, fields)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        def record(event: str, **fields: Any) -> None:
            self.lines.append((level, event, fields))

        return record

    def find(self, event: str) -> dict[str, Any]:
        return next(fields for _, name, fields in self.lines if name == event)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(worker_module, "_log", recorder)
    return recorder


@pytest.fixture
async def troubled(tmp_path: Path) -> AsyncIterator[TroubledLog]:
    log = TroubledLog(tmp_path / "log.sqlite")
    yield log
    await EmbeddedEventLog.close(log)


def _worker(log: TroubledLog, tmp: Path, shutdown_s: float, **kw: Any) -> Worker:
    config = WorkerConfig(
        prefix=f"t{uuid.UUID(int=7).hex[:8]}",
        artifacts_uri=(tmp / "artifacts").as_uri(),
        instance="w-shutdown",
        shutdown_s=shutdown_s,
        **kw,
    )
    return Worker(log, config)


async def _timed(call: Any) -> tuple[Any, float]:
    began = time.monotonic()
    result = await asyncio.wait_for(call, 30)
    return result, time.monotonic() - began


async def test_sigterm_while_connecting_ends_at_once(troubled: TroubledLog, tmp_path: Path) -> None:
    troubled.hang_start = True  # a connect attempt in flight to a broker that never answers
    worker = _worker(troubled, tmp_path, shutdown_s=60)
    running = asyncio.create_task(worker.run_forever(close_log=True))
    try:
        await wait_until(lambda: "start" in troubled.entered, 10, "a connect attempt")
        os.kill(os.getpid(), signal.SIGTERM)
        clean, took = await _timed(running)
    finally:
        running.cancel()
    assert clean is True
    assert took < MARGIN_S


async def test_a_close_that_never_returns_is_given_up_after_shutdown_s(
    troubled: TroubledLog, tmp_path: Path, recorder: Recorder
) -> None:
    troubled.hang_close = True
    worker = _worker(troubled, tmp_path, shutdown_s=0.5)
    await worker.start()
    clean, took = await _timed(worker.stop(close_log=True))
    assert clean is False
    assert 0.5 <= took < 0.5 + MARGIN_S
    assert recorder.find("shutdown given up; exiting without it")["left"] == ["event log"]


async def test_a_second_signal_forces_the_stop(
    troubled: TroubledLog, tmp_path: Path, recorder: Recorder
) -> None:
    troubled.hang_close = True
    worker = _worker(troubled, tmp_path, shutdown_s=60)
    running = asyncio.create_task(worker.run_forever(close_log=True))
    try:
        await wait_until(lambda: bool(worker._tasks), 10, "the worker to start")
        os.kill(os.getpid(), signal.SIGTERM)
        await wait_until(lambda: "close" in troubled.entered, 10, "the log close")
        os.kill(os.getpid(), signal.SIGTERM)
        clean, took = await _timed(running)
    finally:
        running.cancel()
    assert clean is False
    assert took < MARGIN_S
    assert recorder.find("shutdown given up; exiting without it")["forced"] is True


async def test_a_log_down_mid_job_is_given_up_and_the_child_stopped(
    troubled: TroubledLog, tmp_path: Path, recorder: Recorder
) -> None:
    others = set(children_of(os.getpid()))  # other tests' servers may share this process
    worker = _worker(troubled, tmp_path, shutdown_s=1.0, child_argv=fake_child("sleep", 60))
    await worker.start()
    topics = WorkerTopics(worker.config.prefix, worker.config.pool)
    job = await submit(troubled, topics, write_dataset(tmp_path / "artifacts"))
    await wait_event(troubled, topics, job, "TrialCompleted", 30)
    job_children = set(children_of(os.getpid())) - others
    assert job_children, "the job's child is not running"
    troubled.down = True  # the slot's JobInterrupted now retries for minutes
    clean, took = await _timed(worker.stop(close_log=True))
    assert clean is False
    assert 1.0 <= took < 1.0 + MARGIN_S
    assert recorder.find("shutdown given up; exiting without it")["left"] == [
        "slot0",
        "log tail",
        "event log",
    ]
    # the child was sent SIGTERM by the stop; it is gone once it is dead (reaped or a zombie)
    await wait_until(lambda: not _living(job_children), 10, "the job's child to end")


def _living(pids: set[int]) -> list[int]:
    """Those of ``pids`` that still run (a zombie has ended: only its exit status is left for
    the event loop's child watcher to collect)."""
    out = []
    for pid in sorted(pids):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.append(pid)
    return out
