"""Helpers for worker tests on both buses: datasets, commands, the log read back and folded."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from tabstream.adapters.artifacts.local import LocalArtifactStore
from tabstream.adapters.bus.port import BusUnavailable, EventLog, OutgoingRecord
from tabstream.consumer import WorkerTopics
from tabstream.projection.fold import ProjectionState, apply_in_place
from tabstream.schemas.events import (
    CancelRequested,
    Envelope,
    EventPayload,
    Producer,
    RunRequested,
    UndecodableEvent,
    decode,
    encode,
    headers,
)
from tabstream.schemas.run import TrainerRunRequest

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
FAKE_CHILD = str(Path(__file__).with_name("fake_child.py"))
TENANT = "tenant-a"
API = Producer(service="producer_api", instance="test")


def fake_child(mode: str, seconds: float = 0.1) -> tuple[str, ...]:
    """``child_argv`` for the fake child in ``mode``."""
    return (sys.executable, FAKE_CHILD, mode, str(seconds))


def write_dataset(artifacts_root: Path, rows: int = 200) -> uuid.UUID:
    """A slice of credit_g stored where the API would store it; returns its dataset id."""
    dataset_id = uuid.uuid4()
    store = LocalArtifactStore(artifacts_root)
    table = pq.read_table(DATA / "credit_g.parquet").slice(0, rows)
    store.write_parquet(f"datasets/{dataset_id}/data.parquet", table)
    return dataset_id


def run_request(dataset_id: uuid.UUID, **kw: Any) -> TrainerRunRequest:
    """A tiny binclass TrainerRun (xgboost, 2 trials, 3 folds unless overridden)."""
    body: dict[str, Any] = {
        "dataset_id": str(dataset_id),
        "task": {"task_kind": "binclass", "label_column": "creditability"},
        "model_types": ["xgboost"],
        "n_trials": 2,
        "n_splits": 3,
    }
    body.update(kw)
    return TrainerRunRequest.model_validate(body)


def _record(topic: str, payload: EventPayload) -> OutgoingRecord:
    env = Envelope.wrap(payload, tenant=TENANT, producer=API)
    return OutgoingRecord(topic, env.aggregate_id, encode(env), headers(env))


async def submit(
    log: EventLog,
    topics: WorkerTopics,
    dataset_id: uuid.UUID,
    job_id: uuid.UUID | None = None,
    **kw: Any,
) -> uuid.UUID:
    """Publish a RunRequested (as the API does) and return the job id."""
    job_id = job_id or uuid.uuid4()
    request = run_request(dataset_id, **kw)
    cmd = RunRequested(
        job_id=job_id,
        dataset_id=dataset_id,
        request=request,
        pool=topics.pool,
        submitted_at=datetime.now(UTC),
        request_digest="d" * 64,
    )
    await log.publish(_record(topics.commands, cmd))
    return job_id


async def cancel(log: EventLog, topics: WorkerTopics, job_id: uuid.UUID) -> None:
    """Publish a CancelRequested on the control topic."""
    await log.publish(_record(topics.control, CancelRequested(job_id=job_id)))


async def envelopes(log: EventLog, topic: str) -> list[Envelope]:
    """Every decodable committed envelope of ``topic``."""
    out = []
    async for record in log.read(topic):
        with contextlib.suppress(UndecodableEvent):
            out.append(decode(record.value))
    return out


async def fold(log: EventLog, topics: WorkerTopics) -> ProjectionState:
    """The projection's pure reducer over commands, control and events."""
    state = ProjectionState()
    for topic in (topics.commands, topics.control, topics.events):
        for env in await envelopes(log, topic):
            apply_in_place(state, env)
    return state


async def wait_status(
    log: EventLog, topics: WorkerTopics, job_ids: list[uuid.UUID], timeout_s: float = 60
) -> ProjectionState:
    """Fold until every job is terminal (AssertionError with the statuses after the timeout)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            state = await fold(log, topics)
        except BusUnavailable:  # a broker restart under test
            await asyncio.sleep(0.5)
            continue
        statuses = {str(j): state.jobs.get(str(j), {}).get("status") for j in job_ids}
        if all(s in ("completed", "failed", "cancelled") for s in statuses.values()):
            return state
        if loop.time() > deadline:
            raise AssertionError(f"jobs not terminal in {timeout_s}s: {statuses}")
        await asyncio.sleep(0.3)


def job_events(envs: list[Envelope], job_id: uuid.UUID) -> list[Envelope]:
    """The envelopes of one job, in log order."""
    return [e for e in envs if e.aggregate_id == str(job_id)]


def types_of(envs: list[Envelope]) -> list[str]:
    """Their types."""
    return [e.type for e in envs]


def terminal_count(envs: list[Envelope]) -> int:
    """How many terminal events."""
    return sum(e.type in ("JobCompleted", "JobFailed", "JobCancelled") for e in envs)


def trial_counts(envs: list[Envelope]) -> Counter[tuple[int, int]]:
    """TrialCompleted per (row, trial) across attempts; a redelivered copy of one event (same
    event_id, e.g. a publish retried across a broker restart) counts once."""
    unique = {e.event_id: e for e in envs if e.type == "TrialCompleted"}
    return Counter((e.payload.row, e.payload.trial) for e in unique.values())  # type: ignore[union-attr]


def assert_gapless(envs: list[Envelope]) -> None:
    """Per (attempt, producer): seq 0..n-1 without gaps or repeats."""
    seqs: dict[tuple[int, str], list[int]] = {}
    for e in envs:
        if e.attempt:
            seqs.setdefault((e.attempt, e.producer.instance), []).append(e.seq)
    for key, values in seqs.items():
        assert sorted(values) == list(range(len(values))), (key, values)


async def wait_event(
    log: EventLog, topics: WorkerTopics, job_id: uuid.UUID, kind: str, timeout_s: float = 60
) -> None:
    """Until the job has an event of type ``kind`` on the events topic."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while kind not in types_of(job_events(await envelopes(log, topics.events), job_id)):
        if loop.time() > deadline:
            raise AssertionError(f"no {kind} for {job_id} within {timeout_s}s")
        await asyncio.sleep(0.1)
