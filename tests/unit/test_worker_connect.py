"""A worker started before its log is reachable waits for it instead of exiting."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from tabstream.adapters.bus.embedded import EmbeddedEventLog
from tabstream.adapters.bus.port import BusUnavailable
from tabstream.consumer import Worker, WorkerConfig
from tabstream.consumer import worker as worker_module


class FlakyStartLog(EmbeddedEventLog):
    """An embedded log whose first ``failures`` starts fail as a down broker would."""

    def __init__(self, path: Path, failures: int) -> None:
        super().__init__(path)
        self.failures, self.attempts = failures, 0

    async def start(self) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise BusUnavailable("broker down")
        await super().start()


def _config(tmp_path: Path) -> WorkerConfig:
    return WorkerConfig(
        prefix=f"t{uuid.uuid4().hex[:8]}",
        artifacts_uri=(tmp_path / "artifacts").as_uri(),
        instance="w-connect",
    )


async def test_start_retries_until_the_log_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "CONNECT_RETRY_S", 0.01)
    log = FlakyStartLog(tmp_path / "log.sqlite", failures=3)
    worker = Worker(log, _config(tmp_path))
    await asyncio.wait_for(worker.start(), 10)
    try:
        assert log.attempts == 4
        assert all(not task.done() for task in worker._tasks)
        assert await log.partitions(worker.topics.commands) >= 1
    finally:
        await worker.stop()
        await log.close()


async def test_shutdown_ends_the_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "CONNECT_RETRY_S", 0.01)
    log = FlakyStartLog(tmp_path / "log.sqlite", failures=10**6)
    worker = Worker(log, _config(tmp_path))
    connecting = asyncio.create_task(worker.connect())
    await asyncio.sleep(0.1)
    worker.shutdown.set()
    await asyncio.wait_for(connecting, 5)
    assert log.attempts > 1
