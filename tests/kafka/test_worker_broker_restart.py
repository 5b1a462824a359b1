"""The broker is killed (-9) and restarted on the same log dir mid-job: the job completes once.

Runs on a private broker (``KAFKA_PORT=19492 scripts/kafka.sh start``), never the shared one."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tabstream.adapters.bus.kafka import KafkaEventLog
from tabstream.consumer import WorkerTopics
from tests.faults.processes import ROOT, start_worker, wait_until
from tests.faults.worker_support import (
    envelopes,
    job_events,
    submit,
    terminal_count,
    trial_counts,
    wait_event,
    wait_status,
    write_dataset,
)

pytestmark = pytest.mark.kafka
PORT = 19492
RUN = ROOT / ".kafka" / "run"


def _script(action: str) -> None:
    env = {**os.environ, "KAFKA_PORT": str(PORT)}
    subprocess.run([str(ROOT / "scripts" / "kafka.sh"), action], env=env, check=True, cwd=ROOT)


@pytest.fixture
def private_broker(kafka_bootstrap: str) -> Iterator[str]:
    _script("start")
    try:
        yield f"127.0.0.1:{PORT}"
    finally:
        _script("stop")


def kill_and_restart_later(delay_s: float) -> subprocess.Popen[bytes]:
    """kill -9 the private broker, then start it again on the same log dir after ``delay_s``."""
    pidfile = RUN / f"broker-{PORT}.pid"
    logdir = (RUN / f"broker-{PORT}.dir").read_text().strip()
    os.kill(int(pidfile.read_text()), signal.SIGKILL)
    cmd = (f"sleep {delay_s}; exec java -Xms256m -Xmx512m -XX:+UseG1GC "
           f"-Dlog4j2.configurationFile={RUN}/log4j2-tools.properties -cp '{ROOT}/.kafka/libs/*' "
           f"kafka.Kafka {logdir}/server.properties")  # fmt: skip
    with open(f"{logdir}/restart.log", "wb") as out:
        proc = subprocess.Popen(["bash", "-c", cmd], stdout=out, stderr=subprocess.STDOUT)
    pidfile.write_text(str(proc.pid))
    return proc


async def test_broker_killed_and_restarted_mid_job_completes_once(
    private_broker: str, tmp_path: Path
) -> None:
    topics = WorkerTopics(f"t{uuid.uuid4().hex[:10]}")
    log = KafkaEventLog(private_broker, client_id="restart-test")
    await log.start()
    await log.create_topics(topics.partition_counts())
    dataset = write_dataset(tmp_path / "data" / "artifacts", rows=300)
    args = ["--bus", f"kafka://{private_broker}", "--data-dir", str(tmp_path / "data"),
            "--prefix", topics.prefix, "--session-timeout-ms", "10000"]  # fmt: skip
    worker = start_worker(tmp_path, "w0", *args)
    try:
        await wait_until(lambda: any(worker.assigned().values()), 60, "assignment")
        job = await submit(log, topics, dataset, n_trials=10)
        await wait_event(log, topics, job, "TrialCompleted", 90)
        kill_and_restart_later(4.0)
        await asyncio.sleep(6)
        state = await wait_status(log, topics, [job], 150)
        events = job_events(await envelopes(log, topics.events), job)
    finally:
        worker.stop()
        await log.close()
    assert state.jobs[str(job)]["status"] == "completed", state.jobs[str(job)]["error"]
    assert terminal_count(events) == 1
    counts = trial_counts(events)
    assert max(counts.values()) == 1, counts
