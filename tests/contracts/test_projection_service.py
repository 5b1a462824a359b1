"""The projection service on every EventLog backend: follow, wait_applied, resume, rebuild."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tabstream.adapters.bus.port import EventLog, OutgoingRecord, Position
from tabstream.producer_api.readmodel import JobReadModel
from tabstream.projection import (
    ProjectionReadModel,
    ProjectionService,
    ProjectionStore,
    Topics,
    rebuild,
    replay,
)
from tabstream.projection.synthetic import JobHistory, Synth
from tabstream.schemas import Envelope, encode, headers
from tests.contracts.conftest import Backend

POOLS = ["cpu"]


def topic_of(topics: Topics, kind: str) -> str:
    return {"commands": topics.commands("cpu"), "control": topics.control}.get(kind, topics.events)


@asynccontextmanager
async def following(
    log: EventLog, path: Path, topics: Topics
) -> AsyncIterator[tuple[ProjectionStore, ProjectionService]]:
    """A started projection service on ``log`` folding into a store at ``path``."""
    store = ProjectionStore(path)
    service = ProjectionService(log, store, topics, POOLS)
    await service.start()
    try:
        yield store, service
    finally:
        await service.stop()
        store.close()


async def publish(log: EventLog, topic: str, env: Envelope) -> Position:
    record = OutgoingRecord(topic, env.aggregate_id, encode(env), headers(env))
    return await log.publish(record)


async def publish_jobs(
    log: EventLog, topics: Topics, jobs: list[JobHistory]
) -> list[tuple[str, Position]]:
    out = []
    for h in jobs:
        for kind, envs in h.streams.items():
            for env in envs:
                topic = topic_of(topics, kind)
                out.append((topic, await publish(log, topic, env)))
    return out


async def wait_all(service: ProjectionService, positions: list[tuple[str, Position]]) -> None:
    for topic, pos in positions:
        assert await service.wait_applied(topic, pos.partition, pos.offset, 20.0)


def make_jobs(seed: int, n: int) -> list[JobHistory]:
    synth = Synth(seed)
    outcomes = ["completed", "failed", "cancelled", "running"]
    return [
        synth.job(
            "acme", uuid.uuid4(), attempts=1 + i % 2, outcome=outcomes[i % 4], cancel=i % 4 == 2
        )  # type: ignore[arg-type]
        for i in range(n)
    ]


async def test_follows_waits_and_rebuilds_identically(
    backend: Backend, tmp_path: Path, unique_name: str
) -> None:
    log = await backend.open()
    topics = Topics(unique_name)
    async with following(log, tmp_path / "live.sqlite", topics) as (store, service):
        jobs = make_jobs(1, 4)
        positions = await publish_jobs(log, topics, jobs)
        await wait_all(service, positions)
        statuses = [store.queries.get_job("acme", h.job_id)["status"] for h in jobs]  # type: ignore[index]
        assert statuses == ["completed", "failed", "cancelled", "running"]
        retried = store.queries.get_job("acme", jobs[1].job_id)
        assert retried is not None and retried["attempts"][0]["outcome"] == "interrupted"
        assert sum((await service.lag()).values()) <= 1  # a Kafka commit marker may trail
        read_model = ProjectionReadModel(store, service)  # what the API reads through
        assert isinstance(read_model, JobReadModel)
        page = read_model.list_jobs("acme", limit=3)
        assert len(page.items) == 3 and page.next_cursor is not None
        assert len(read_model.list_jobs("acme", cursor=page.next_cursor).items) == 1
        assert read_model.job_trials("other", jobs[0].job_id) == []
        assert (await read_model.lag() or 0) <= 1
        with pytest.raises(ValueError):
            read_model.list_jobs("acme", cursor="!!not-a-cursor")
        names = topics.projection_topics(POOLS)
        digest = await rebuild(log, tmp_path / "fresh.sqlite", names, until=store.offsets())
        assert digest == store.digest()
        full = await rebuild(log, tmp_path / "full.sqlite", names)
        assert full == store.digest()


async def test_resume_from_stored_offsets_does_not_reapply(
    backend: Backend, tmp_path: Path, unique_name: str
) -> None:
    log = await backend.open()
    topics = Topics(unique_name)
    path = tmp_path / "live.sqlite"
    store = ProjectionStore(path)
    service = ProjectionService(log, store, topics, POOLS)
    await service.start()
    jobs = make_jobs(2, 3)
    await wait_all(service, await publish_jobs(log, topics, jobs[:2]))
    applied_first = service.applied
    await service.stop()
    store.close()

    more = await publish_jobs(log, topics, jobs[2:])
    store = ProjectionStore(path)
    service = ProjectionService(log, store, topics, POOLS)
    await service.start()
    try:
        await wait_all(service, more)
        await asyncio.sleep(0.3)
        assert service.applied == sum(len(e) for e in jobs[2].streams.values())
        assert applied_first == sum(len(e) for h in jobs[:2] for e in h.streams.values())
        digest = await rebuild(log, tmp_path / "fresh.sqlite", topics.projection_topics(POOLS))
        assert digest == store.digest()
    finally:
        await service.stop()
        store.close()


async def test_wait_applied_times_out_and_undecodable_records_are_skipped(
    backend: Backend, tmp_path: Path, unique_name: str
) -> None:
    log = await backend.open()
    topics = Topics(unique_name)
    async with following(log, tmp_path / "live.sqlite", topics) as (store, service):
        assert not await service.wait_applied(topics.events, 0, 10_000, 0.2)
        bad = await log.publish(OutgoingRecord(topics.events, "k", b"\xffnot json"))
        (job,) = make_jobs(3, 1)
        good = await publish_jobs(log, topics, [job])
        assert await service.wait_applied(topics.events, bad.partition, bad.offset, 20.0)
        await wait_all(service, good)
        assert service.undecodable == 1
        assert store.queries.get_job("acme", job.job_id) is not None
        items = [i async for i in replay(log, topics.events)]
        assert [i.error is not None for i in items].count(True) == 1
        only = [i async for i in replay(log, topics.projection_topics(POOLS), job=job.job_id)]
        assert len(only) == sum(len(e) for e in job.streams.values())


async def test_concurrent_waiters_wake_when_their_own_record_is_applied(
    backend: Backend, tmp_path: Path, unique_name: str
) -> None:
    log = await backend.open()
    topics = Topics(unique_name)
    async with following(log, tmp_path / "live.sqlite", topics) as (store, service):
        first = await log.publish(OutgoingRecord(topics.events, "k", b"\xff"))
        assert await service.wait_applied(topics.events, first.partition, first.offset, 20.0)
        nxt = first.offset + 1
        early = asyncio.create_task(service.wait_applied(topics.events, first.partition, nxt, 20))
        await asyncio.sleep(0.2)
        assert not early.done()
        await log.publish(OutgoingRecord(topics.events, "k", b"\xff"))
        positions = await publish_jobs(log, topics, make_jobs(5, 8))
        waits = [service.wait_applied(t, p.partition, p.offset, 20.0) for t, p in positions]
        assert all(await asyncio.gather(early, *waits))
        for topic, pos in positions:
            assert store.next_offset(topic, pos.partition) > pos.offset
        assert not any(h for h in service._waiters.values())


async def test_handed_over_envelopes_are_folded_without_decoding_and_match_a_rebuild(
    backend: Backend, tmp_path: Path, unique_name: str
) -> None:
    log = await backend.open()
    topics = Topics(unique_name)
    store = ProjectionStore(tmp_path / "live.sqlite")
    service = ProjectionService(log, store, topics, POOLS)
    jobs = make_jobs(4, 3)
    positions = await publish_jobs(log, topics, jobs)
    envelopes = [env for h in jobs for envs in h.streams.values() for env in envs]
    waits = [
        asyncio.create_task(service.wait_applied(topic, pos.partition, pos.offset, 20.0, env))
        for (topic, pos), env in zip(positions, envelopes, strict=True)
    ]
    await asyncio.sleep(0)  # every wait has handed its envelope over before folding starts
    await service.start()
    try:
        assert all(await asyncio.gather(*waits))
        assert service.handed_over == len(envelopes) and service.undecodable == 0
        digest = await rebuild(log, tmp_path / "fresh.sqlite", topics.projection_topics(POOLS))
        assert digest == store.digest()
    finally:
        await service.stop()
        store.close()


async def test_handed_over_envelopes_continuing_a_partition_are_folded_before_any_read(
    backend: Backend, tmp_path: Path, unique_name: str
) -> None:
    log = await backend.open()
    topics = Topics(unique_name)
    jobs = make_jobs(5, 3)
    positions = await publish_jobs(log, topics, jobs)
    envelopes = [env for h in jobs for envs in h.streams.values() for env in envs]
    gap = positions[0]  # held back: its partition's later records must wait for the readers
    assert gap[1].offset == 0
    store = ProjectionStore(tmp_path / "live.sqlite")
    service = ProjectionService(log, store, topics, POOLS)  # never started: nothing is read
    try:
        applied = await asyncio.gather(
            *(
                service.wait_applied(topic, pos.partition, pos.offset, 0.3, env)
                for (topic, pos), env in zip(positions, envelopes, strict=True)
                if (topic, pos) != gap
            )
        )
        behind_gap = [
            (topic, pos.partition) == (gap[0], gap[1].partition)
            for topic, pos in positions
            if (topic, pos) != gap
        ]
        assert applied == [not behind for behind in behind_gap]
        assert any(behind_gap) and not all(behind_gap)
        await service.start()  # the readers fold the rest: the same state as a rebuild
        assert await service.wait_applied(gap[0], gap[1].partition, gap[1].offset, 20.0)
        last = max(
            pos.offset
            for topic, pos in positions
            if (topic, pos.partition) == (gap[0], gap[1].partition)
        )
        assert await service.wait_applied(gap[0], gap[1].partition, last, 20.0)
        digest = await rebuild(log, tmp_path / "fresh.sqlite", topics.projection_topics(POOLS))
        assert digest == store.digest()
    finally:
        await service.stop()
        store.close()
