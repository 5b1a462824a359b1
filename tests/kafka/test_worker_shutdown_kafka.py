"""The broker dies (kill -9) while a worker runs a job; SIGTERM then still ends the worker within
TABSTREAM_SHUTDOWN_S, and its job's child with it (it used to retry its JobInterrupted event
for two minutes, then wait on the producer's flush).

Runs on a private broker (``KAFKA_PORT=19512 scripts/kafka.sh start``), never the shared one."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tabstream.adapters.bus.kafka import KafkaEventLog
from tabstream.consumer import WorkerTopics
from tests.faults.processes import ROOT, WorkerProcess, start_worker, wait_until
from tests.faults.worker_support import submit, wait_event, write_dataset

pytestmark = pytest.mark.kafka
PORT = 19512
RUN = ROOT / ".kafka" / "run"
SHUTDOWN_S = 2.0
MARGIN_S = 6.0


def _script(action: str) -> None:
    env = {**os.environ, "KAFKA_PORT": str(PORT)}
    subprocess.run([str(ROOT / "scripts" / "kafka.sh"), action], env=env, check=True, cwd=ROOT)


@pytest.fixture
def private_broker() -> Iterator[str]:
    _script("start")
    try:
        yield f"127.0.0.1:{PORT}"
    finally:
        _script("stop")


def _kill_broker() -> None:
    os.kill(int((RUN / f"broker-{PORT}.pid").read_text()), signal.SIGKILL)


def _exit_code_within(worker: WorkerProcess, timeout_s: float) -> int | None:
    try:
        return worker.proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        return None


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def _running_job(worker: WorkerProcess, bootstrap: str, topics: WorkerTopics) -> int:
    """Submit a long job and wait until its child reported a trial; returns the child's pid."""
    log = KafkaEventLog(bootstrap, client_id="shutdown-test")
    try:
        await log.start()
        await log.create_topics(topics.partition_counts())
        await wait_until(lambda: any(worker.assigned().values()), 60, "assignment")
        dataset = write_dataset(worker.log_path.parent / "data" / "artifacts", rows=50)
        job = await submit(log, topics, dataset, job_id=uuid.UUID(int=11))
        await wait_event(log, topics, job, "TrialCompleted", 60)
    finally:
        await log.close()
    (child,) = worker.children()
    return child


async def test_sigterm_after_the_broker_died_mid_job_exits_within_shutdown_s(
    private_broker: str, tmp_path: Path
) -> None:
    topics = WorkerTopics(f"t{uuid.uuid4().hex[:10]}")
    args = ["--bus", f"kafka://{private_broker}", "--data-dir", str(tmp_path / "data"),
            "--prefix", topics.prefix]  # fmt: skip
    env = {"TABSTREAM_SHUTDOWN_S": str(SHUTDOWN_S)}
    worker = start_worker(tmp_path, "w0", *args, mode="sleep", seconds=600, env=env)
    try:
        child = await _running_job(worker, private_broker, topics)
        _kill_broker()
        await asyncio.sleep(1)
        worker.kill(signal.SIGTERM)
        began = time.monotonic()
        code = await asyncio.to_thread(_exit_code_within, worker, SHUTDOWN_S + MARGIN_S)
        took = time.monotonic() - began
        await wait_until(lambda: not _alive(child), 10, "the job's child to exit")
    finally:
        worker.stop()
    log = worker.log_path.read_text(errors="replace")
    assert code is not None, f"still running {SHUTDOWN_S + MARGIN_S} s after SIGTERM\n{log}"
    assert took < SHUTDOWN_S + MARGIN_S
    # the JobInterrupted event cannot reach a dead broker: shutdown is given up, exit 1
    assert "shutdown given up" in log, log
    assert code == 1, log
