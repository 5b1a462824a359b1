"""The worker on the real Kafka broker, as real subprocesses; every test checks the raw log
and the projection's fold of it."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tabstream.adapters.bus.kafka import KafkaEventLog
from tabstream.adapters.bus.partitioner import partition_for
from tabstream.adapters.bus.port import OutgoingRecord
from tabstream.consumer import WorkerTopics
from tests.faults.processes import WorkerProcess, start_worker, wait_until
from tests.faults.worker_support import (
    assert_gapless,
    cancel,
    envelopes,
    job_events,
    submit,
    terminal_count,
    trial_counts,
    types_of,
    wait_event,
    wait_status,
    write_dataset,
)

pytestmark = pytest.mark.kafka
COMMAND_PARTITIONS = 4


@pytest.fixture
async def log(kafka_bootstrap: str, unique_name: str) -> AsyncIterator[KafkaEventLog]:
    log = KafkaEventLog(kafka_bootstrap, client_id="worker-test")
    await log.start()
    topics = WorkerTopics(unique_name)
    counts = topics.partition_counts()
    counts[topics.commands] = COMMAND_PARTITIONS
    await log.create_topics(counts)
    yield log
    await log.close()


@pytest.fixture
def topics(unique_name: str) -> WorkerTopics:
    return WorkerTopics(unique_name)


@pytest.fixture
def workers() -> AsyncIterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started  # type: ignore[misc]
    for worker in started:
        worker.stop()


def spawn(
    workers: list[WorkerProcess],
    tmp: Path,
    kafka: str,
    topics: WorkerTopics,
    *extra: str,
    mode: str = "real",
    seconds: float = 0.0,
) -> WorkerProcess:
    args = ["--bus", f"kafka://{kafka}", "--data-dir", str(tmp / "data"), "--prefix",
            topics.prefix, "--session-timeout-ms", "6000", *extra]  # fmt: skip
    worker = start_worker(tmp, f"w{len(workers)}", *args, mode=mode, seconds=seconds)
    workers.append(worker)
    return worker


async def group_ready(workers: list[WorkerProcess], slots: int) -> None:
    """Until ``slots`` slots report a non-empty assignment covering every partition."""

    def ready() -> bool:
        latest = {k: v for w in workers for k, v in w.assigned().items()}
        parts = sorted(p for v in latest.values() for p in v)
        return sum(bool(v) for v in latest.values()) == slots and parts == list(range(4))

    await wait_until(ready, 60, f"{slots} slots assigned")


def ids_on_partitions(n: int) -> list[uuid.UUID]:
    """``n`` job ids that land on partitions 0..n-1 of the commands topic."""
    found: dict[int, uuid.UUID] = {}
    while any(p not in found for p in range(n)):
        job = uuid.uuid4()
        found.setdefault(partition_for(str(job), COMMAND_PARTITIONS), job)
    return [found[p] for p in range(n)]


async def test_two_workers_run_four_jobs_in_parallel(
    log: KafkaEventLog, topics: WorkerTopics, workers: list[WorkerProcess], tmp_path: Path,
    kafka_bootstrap: str,
) -> None:  # fmt: skip
    for _ in range(2):
        spawn(workers, tmp_path, kafka_bootstrap, topics, "--slots", "2", mode="sleep", seconds=4)
    await group_ready(workers, 4)
    jobs = [await submit(log, topics, uuid.uuid4(), job_id=j) for j in ids_on_partitions(4)]
    state = await wait_status(log, topics, jobs, 60)
    events = await envelopes(log, topics.events)
    starts = [e.occurred_at for e in events if e.type == "JobStarted"]
    ends = [e.occurred_at for e in events if e.type == "JobCompleted"]
    assert len(starts) == 4 and len(ends) == 4
    assert max(starts) < min(ends), "the four jobs did not overlap"
    assert len({e.producer.instance for e in events if e.type == "JobStarted"}) == 4
    for job in jobs:
        assert state.jobs[str(job)]["status"] == "completed"
        assert terminal_count(job_events(events, job)) == 1


async def test_a_job_longer_than_max_poll_interval_finishes_once(
    log: KafkaEventLog, topics: WorkerTopics, workers: list[WorkerProcess], tmp_path: Path,
    kafka_bootstrap: str,
) -> None:  # fmt: skip
    spawn(workers, tmp_path, kafka_bootstrap, topics, "--max-poll-interval-ms", "1500",
          mode="sleep", seconds=6)  # fmt: skip
    await group_ready(workers, 1)
    job = await submit(log, topics, uuid.uuid4())
    state = await wait_status(log, topics, [job], 60)
    events = job_events(await envelopes(log, topics.events), job)
    assert state.jobs[str(job)]["status"] == "completed"
    assert types_of(events).count("JobStarted") == 1 and terminal_count(events) == 1
    assert "JobInterrupted" not in types_of(events)
    assert len(workers[0].assigned()) == 1


async def test_kill_9_worker_mid_job_another_member_finishes_without_redoing_trials(
    log: KafkaEventLog, topics: WorkerTopics, workers: list[WorkerProcess], tmp_path: Path,
    kafka_bootstrap: str,
) -> None:  # fmt: skip
    dataset = write_dataset(tmp_path / "data" / "artifacts", rows=300)
    first = spawn(workers, tmp_path, kafka_bootstrap, topics)
    await group_ready(workers, 1)
    job = await submit(log, topics, dataset, n_trials=12)
    await wait_until_trials(log, topics, job, 2)
    spawn(workers, tmp_path, kafka_bootstrap, topics)
    first.stop()
    state = await wait_status(log, topics, [job], 120)
    events = job_events(await envelopes(log, topics.events), job)
    assert state.jobs[str(job)]["status"] == "completed"
    assert terminal_count(events) == 1
    assert [e.payload.attempt for e in events if e.type == "JobStarted"] == [1, 2]  # type: ignore[union-attr]
    assert [e.payload.lost_attempt for e in events if e.type == "JobInterrupted"] == [1]  # type: ignore[union-attr]
    counts = trial_counts(events)
    assert max(counts.values()) == 1, f"trials re-run: {counts}"
    assert len(counts) == 12  # the trial killed mid-fit is replaced by a new number
    first_trials = {
        e.payload.trial for e in events if e.type == "TrialCompleted" and e.attempt == 1
    }  # type: ignore[union-attr]
    assert len(first_trials) >= 2
    assert len(state.jobs[str(job)]["attempts"]) == 2
    assert_gapless(events)


async def wait_until_trials(
    log: KafkaEventLog, topics: WorkerTopics, job: uuid.UUID, n: int
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 90
    while (
        types_of(job_events(await envelopes(log, topics.events), job)).count("TrialCompleted") < n
    ):
        assert loop.time() < deadline, "no trials"
        await asyncio.sleep(0.2)


async def test_kill_9_child_attempt_2_succeeds(
    log: KafkaEventLog, topics: WorkerTopics, workers: list[WorkerProcess], tmp_path: Path,
    kafka_bootstrap: str,
) -> None:  # fmt: skip
    worker = spawn(workers, tmp_path, kafka_bootstrap, topics, mode="slow_first", seconds=60)
    await group_ready(workers, 1)
    job = await submit(log, topics, uuid.uuid4())
    await wait_event(log, topics, job, "TrialCompleted")
    children = worker.children()
    assert len(children) == 1
    os.kill(children[0], signal.SIGKILL)
    state = await wait_status(log, topics, [job], 30)
    events = job_events(await envelopes(log, topics.events), job)
    assert [e.payload.attempt for e in events if e.type == "JobStarted"] == [1, 2]  # type: ignore[union-attr]
    assert "signal 9" in next(e for e in events if e.type == "JobInterrupted").payload.reason  # type: ignore[union-attr]
    assert state.jobs[str(job)]["status"] == "completed" and terminal_count(events) == 1
    assert worker.proc.poll() is None, "the worker died with its child"


async def test_always_crashing_command_is_dead_lettered_after_3_attempts(
    log: KafkaEventLog, topics: WorkerTopics, workers: list[WorkerProcess], tmp_path: Path,
    kafka_bootstrap: str,
) -> None:  # fmt: skip
    spawn(workers, tmp_path, kafka_bootstrap, topics, mode="crash")
    await group_ready(workers, 1)
    job = await submit(log, topics, uuid.uuid4())
    state = await wait_status(log, topics, [job], 60)
    events = job_events(await envelopes(log, topics.events), job)
    assert state.jobs[str(job)]["status"] == "failed"
    assert "crashed in 3 attempts" in str(state.jobs[str(job)]["error"])
    assert types_of(events).count("JobStarted") == 3 and terminal_count(events) == 1
    dlq = [r async for r in log.read(topics.dlq)]
    assert len(dlq) == 1 and dlq[0].key == str(job) and dlq[0].header("attempts") == b"3"


async def test_undecodable_record_goes_to_the_dlq_and_the_worker_goes_on(
    log: KafkaEventLog, topics: WorkerTopics, workers: list[WorkerProcess], tmp_path: Path,
    kafka_bootstrap: str,
) -> None:  # fmt: skip
    spawn(workers, tmp_path, kafka_bootstrap, topics, mode="sleep", seconds=0.1)
    await group_ready(workers, 1)
    bad = uuid.uuid4()
    await log.publish(OutgoingRecord(topics.commands, str(bad), b"\xff\x00garbage"))
    good = await submit(log, topics, uuid.uuid4())
    state = await wait_status(log, topics, [bad, good], 60)
    assert state.jobs[str(bad)]["status"] == "failed"
    assert state.jobs[str(good)]["status"] == "completed"
    dlq = [r async for r in log.read(topics.dlq)]
    assert [r.value for r in dlq] == [b"\xff\x00garbage"]
    assert dlq[0].header("original_topic") == topics.commands.encode()


async def test_sigterm_hands_the_job_over(
    log: KafkaEventLog, topics: WorkerTopics, workers: list[WorkerProcess], tmp_path: Path,
    kafka_bootstrap: str,
) -> None:  # fmt: skip
    first = spawn(workers, tmp_path, kafka_bootstrap, topics, mode="sleep", seconds=4)
    await group_ready(workers, 1)
    job = await submit(log, topics, uuid.uuid4())
    await wait_event(log, topics, job, "TrialCompleted")
    spawn(workers, tmp_path, kafka_bootstrap, topics, mode="sleep", seconds=0.5)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    first.kill(signal.SIGTERM)
    await asyncio.to_thread(first.proc.wait, 15)
    assert loop.time() - t0 < 10
    state = await wait_status(log, topics, [job], 60)
    events = job_events(await envelopes(log, topics.events), job)
    assert state.jobs[str(job)]["status"] == "completed" and terminal_count(events) == 1
    interrupted = [e for e in events if e.type == "JobInterrupted"]
    assert len(interrupted) == 1 and interrupted[0].payload.reason == "worker shut down"  # type: ignore[union-attr]
    starts = [e for e in events if e.type == "JobStarted"]
    assert [s.payload.attempt for s in starts] == [1, 2]  # type: ignore[union-attr]
    assert starts[0].producer.instance != starts[1].producer.instance


async def test_cancel_running_and_queued_jobs(
    log: KafkaEventLog, topics: WorkerTopics, workers: list[WorkerProcess], tmp_path: Path,
    kafka_bootstrap: str,
) -> None:  # fmt: skip
    running, queued = ids_on_partitions(1)[0], uuid.uuid4()
    spawn(workers, tmp_path, kafka_bootstrap, topics, mode="sleep", seconds=60)
    await group_ready(workers, 1)
    await submit(log, topics, uuid.uuid4(), job_id=running)
    await wait_event(log, topics, running, "TrialCompleted")
    await submit(log, topics, uuid.uuid4(), job_id=queued)
    await cancel(log, topics, queued)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await cancel(log, topics, running)
    await wait_event(log, topics, running, "JobCancelled", 10)
    assert loop.time() - t0 < 5
    state = await wait_status(log, topics, [running, queued], 30)
    events = await envelopes(log, topics.events)
    assert state.jobs[str(running)]["status"] == "cancelled"
    assert state.jobs[str(queued)]["status"] == "cancelled"
    assert "JobStarted" not in types_of(job_events(events, queued))
    assert terminal_count(job_events(events, running)) == 1
