"""The worker on the embedded bus, in one process: complete, crash -> retry -> DLQ, poison,
cancel (queued and running), timeout, already-terminal skip, shutdown hands the job back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tabstream.adapters.bus.embedded import EmbeddedEventLog
from tabstream.adapters.bus.port import OutgoingRecord
from tabstream.consumer import Worker, WorkerConfig, WorkerTopics
from tests.faults.worker_support import (
    assert_gapless,
    cancel,
    envelopes,
    fake_child,
    job_events,
    submit,
    terminal_count,
    types_of,
    wait_event,
    wait_status,
    write_dataset,
)


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[EmbeddedEventLog]:
    log = EmbeddedEventLog(tmp_path / "log.sqlite")
    await log.start()
    yield log
    await log.close()


@pytest.fixture
def topics(unique_name: str) -> WorkerTopics:
    return WorkerTopics(unique_name, "cpu")


async def start_worker(log: EmbeddedEventLog, topics: WorkerTopics, tmp: Path, **kw: Any) -> Worker:
    config = WorkerConfig(
        prefix=topics.prefix,
        artifacts_uri=(tmp / "artifacts").as_uri(),
        instance=f"w{uuid.uuid4().hex[:6]}",
        **kw,
    )
    worker = Worker(log, config)
    await worker.start()
    return worker


async def test_completes_a_real_job_with_one_terminal_event(
    log: EmbeddedEventLog, topics: WorkerTopics, tmp_path: Path
) -> None:
    dataset = write_dataset(tmp_path / "artifacts")
    worker = await start_worker(log, topics, tmp_path)
    try:
        job = await submit(log, topics, dataset)
        state = await wait_status(log, topics, [job], 90)
    finally:
        await worker.stop()
    assert state.jobs[str(job)]["status"] == "completed", state.jobs[str(job)]["error"]
    events = job_events(await envelopes(log, topics.events), job)
    kinds = types_of(events)
    assert kinds[0] == "JobStarted" and kinds[-1] == "JobCompleted"
    assert kinds.count("TrialCompleted") == 2 and "ModelRegistered" in kinds
    assert terminal_count(events) == 1
    assert_gapless(events)
    assert (await log.end_offsets(topics.dlq)) == {0: 0}


async def test_a_crashing_child_is_retried_then_dead_lettered(
    log: EmbeddedEventLog, topics: WorkerTopics, tmp_path: Path
) -> None:
    worker = await start_worker(log, topics, tmp_path, child_argv=fake_child("crash"))
    try:
        job = await submit(log, topics, uuid.uuid4())
        state = await wait_status(log, topics, [job], 60)
    finally:
        await worker.stop()
    row = state.jobs[str(job)]
    assert row["status"] == "failed"
    assert "crashed in 3 attempts" in str(row["error"])
    events = job_events(await envelopes(log, topics.events), job)
    assert types_of(events).count("JobStarted") == 3
    assert types_of(events).count("JobInterrupted") == 3
    assert terminal_count(events) == 1
    dlq = [r async for r in log.read(topics.dlq)]
    assert len(dlq) == 1 and dlq[0].key == str(job)
    assert dlq[0].header("attempts") == b"3" and b"crashed" in (dlq[0].header("error") or b"")
    assert dlq[0].header("original_topic") == topics.commands.encode()


async def test_a_killed_child_fails_the_attempt_and_the_next_attempt_succeeds(
    log: EmbeddedEventLog, topics: WorkerTopics, tmp_path: Path
) -> None:
    worker = await start_worker(log, topics, tmp_path, child_argv=fake_child("segv_first"))
    try:
        job = await submit(log, topics, uuid.uuid4())
        state = await wait_status(log, topics, [job], 30)
    finally:
        await worker.stop()
    assert state.jobs[str(job)]["status"] == "completed"
    events = job_events(await envelopes(log, topics.events), job)
    interrupted = [e for e in events if e.type == "JobInterrupted"]
    assert interrupted[0].payload.lost_attempt == 1  # type: ignore[union-attr]
    assert "signal 9" in interrupted[0].payload.reason  # type: ignore[union-attr]
    assert max(e.attempt for e in events) >= 2 and terminal_count(events) == 1


async def test_poison_goes_to_the_dlq_and_the_worker_goes_on(
    log: EmbeddedEventLog, topics: WorkerTopics, tmp_path: Path
) -> None:
    worker = await start_worker(log, topics, tmp_path, child_argv=fake_child("sleep", 0.05))
    try:
        await log.create_topics(topics.partition_counts())
        bad = uuid.uuid4()
        await log.publish(OutgoingRecord(topics.commands, str(bad), b"{not json"))
        good = await submit(log, topics, uuid.uuid4())
        state = await wait_status(log, topics, [bad, good], 30)
    finally:
        await worker.stop()
    assert state.jobs[str(bad)]["status"] == "failed"
    assert state.jobs[str(good)]["status"] == "completed"
    dlq = [r async for r in log.read(topics.dlq)]
    assert [r.value for r in dlq] == [b"{not json"]
    assert b"undecodable" in (dlq[0].header("error") or b"")


async def test_cancel_queued_and_running_jobs(
    log: EmbeddedEventLog, topics: WorkerTopics, tmp_path: Path
) -> None:
    queued = uuid.uuid4()
    await log.create_topics(topics.partition_counts())
    await cancel(log, topics, queued)
    await submit(log, topics, uuid.uuid4(), job_id=queued)
    worker = await start_worker(log, topics, tmp_path, child_argv=fake_child("sleep", 60))
    try:
        state = await wait_status(log, topics, [queued], 20)
        assert state.jobs[str(queued)]["status"] == "cancelled"
        running = await submit(log, topics, uuid.uuid4())
        loop = asyncio.get_running_loop()
        while "TrialCompleted" not in types_of(
            job_events(await envelopes(log, topics.events), running)
        ):
            await asyncio.sleep(0.05)
        t0 = loop.time()
        await cancel(log, topics, running)
        state = await wait_status(log, topics, [running], 10)
        assert loop.time() - t0 < 5
    finally:
        await worker.stop()
    assert state.jobs[str(running)]["status"] == "cancelled"
    events = await envelopes(log, topics.events)
    assert "JobStarted" not in types_of(job_events(events, queued))
    assert terminal_count(job_events(events, running)) == 1


async def test_timeout_fails_the_job(
    log: EmbeddedEventLog, topics: WorkerTopics, tmp_path: Path
) -> None:
    worker = await start_worker(
        log, topics, tmp_path, child_argv=fake_child("sleep", 60), job_timeout_s=1.0
    )
    try:
        job = await submit(log, topics, uuid.uuid4())
        state = await wait_status(log, topics, [job], 15)
    finally:
        await worker.stop()
    assert state.jobs[str(job)]["status"] == "failed"
    failed = [e for e in await envelopes(log, topics.events) if e.type == "JobFailed"]
    assert failed[0].payload.reason == "timeout"  # type: ignore[union-attr]


async def test_an_already_terminal_job_is_not_run_again(
    log: EmbeddedEventLog, topics: WorkerTopics, tmp_path: Path
) -> None:
    worker = await start_worker(log, topics, tmp_path, child_argv=fake_child("sleep", 0.05))
    try:
        job = await submit(log, topics, uuid.uuid4())
        await wait_status(log, topics, [job], 20)
        await submit(log, topics, uuid.uuid4(), job_id=job)  # a duplicate delivery
        probe = await submit(log, topics, uuid.uuid4())
        await wait_status(log, topics, [probe], 20)
    finally:
        await worker.stop()
    events = job_events(await envelopes(log, topics.events), job)
    assert types_of(events).count("JobStarted") == 1 and terminal_count(events) == 1


async def test_shutdown_interrupts_and_leaves_the_command_for_the_next_worker(
    log: EmbeddedEventLog, topics: WorkerTopics, tmp_path: Path
) -> None:
    worker = await start_worker(log, topics, tmp_path, child_argv=fake_child("sleep", 60))
    job = await submit(log, topics, uuid.uuid4())
    await wait_event(log, topics, job, "TrialCompleted")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await worker.stop()
    assert loop.time() - t0 < 10
    events = job_events(await envelopes(log, topics.events), job)
    assert types_of(events)[-1] == "JobInterrupted" and terminal_count(events) == 0
    second = await start_worker(log, topics, tmp_path, child_argv=fake_child("sleep", 0.05))
    try:
        state = await wait_status(log, topics, [job], 20)
    finally:
        await second.stop()
    assert state.jobs[str(job)]["status"] == "completed"
    events = job_events(await envelopes(log, topics.events), job)
    assert [e.payload.attempt for e in events if e.type == "JobStarted"] == [1, 2]  # type: ignore[union-attr]
    assert types_of(events).count("JobInterrupted") == 1
    assert_gapless(events)


def test_child_env_pins_threads_and_sleeps_waiting_openmp_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setenv("TABSTREAM_SECRET_KEY", "never-for-children")
    env = WorkerConfig(artifacts_uri="file:///a", cores=4, slots=2).env_for_child()
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"
    assert env["OMP_NUM_THREADS"] == env["TABSTREAM_FAMILY_THREADS"] == "2"
    assert env["CUDA_VISIBLE_DEVICES"] == "" and "TABSTREAM_SECRET_KEY" not in env
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # the operator's choice stays
    assert WorkerConfig(artifacts_uri="file:///a").env_for_child()["OMP_WAIT_POLICY"] == "ACTIVE"
