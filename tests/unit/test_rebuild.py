"""Rebuild: batched, in a forked child or in process, it equals an event-at-a-time fold."""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tabstream.adapters.bus.embedded import EmbeddedEventLog
from tabstream.adapters.bus.port import OutgoingRecord
from tabstream.projection import ProjectionStore, Topics, rebuild
from tabstream.projection.forked_fold import RebuildError
from tabstream.projection.replay import decode_record, to_item
from tabstream.projection.synthetic import Synth
from tabstream.schemas import encode, headers
from tabstream.schemas.upcasters import UPCASTERS, upcaster

POOLS = ["cpu"]


@pytest.fixture
def v0_jobfailed() -> Iterator[None]:
    """JobFailed v0 (no ``reason``) upcasts to v1; a forked child inherits the upcaster."""

    @upcaster("JobFailed", 0)
    def _v0_v1(payload: dict[str, Any]) -> dict[str, Any]:
        return payload | {"reason": "training_error"}

    yield
    del UPCASTERS[("JobFailed", 0)]


async def seed(path: Path, n_jobs: int = 6) -> tuple[EmbeddedEventLog, list[str]]:
    """Job histories (retried attempts, cancels, every outcome), each worker record published
    twice (duplicates), a dataset, a junk record and a v0 JobFailed (upcast on read)."""
    topics = Topics()
    log = EmbeddedEventLog(path)
    await log.start()
    await log.create_topics(topics.partition_counts(POOLS))
    synth = Synth(7)
    outcomes = ["completed", "failed", "cancelled", "running"]
    kinds = {"commands": topics.commands("cpu"), "control": topics.control}

    async def publish(topic: str, key: str, value: bytes) -> None:
        await log.publish(OutgoingRecord(topic, key, value))

    dataset = synth.dataset("acme")
    await publish(topics.events, dataset.aggregate_id, encode(dataset))
    for i in range(n_jobs):
        h = synth.job(
            f"tenant-{i % 2}",
            uuid.uuid4(),
            attempts=1 + i % 3,
            outcome=outcomes[i % 4],  # type: ignore[arg-type]
            cancel=i % 4 == 2,
        )
        for kind, envs in h.streams.items():
            for env in envs:
                topic = kinds.get(kind, topics.events)
                for _ in range(2 if env.attempt else 1):
                    await log.publish(
                        OutgoingRecord(topic, env.aggregate_id, encode(env), headers(env))
                    )
    await publish(topics.events, "junk", b"{not json")
    for env in synth.job("acme", uuid.uuid4(), outcome="failed").streams["events"]:
        data = json.loads(encode(env))
        if data["type"] == "JobFailed":  # as a v0 producer wrote it
            del data["payload"]["reason"]
            data["schema_version"] = 0
        await publish(topics.events, env.aggregate_id, json.dumps(data).encode())
    return log, topics.projection_topics(POOLS)


async def one_by_one(log: EmbeddedEventLog, names: list[str], path: Path) -> str:
    """The digest of a store fed one record per transaction, topic after topic."""
    store = ProjectionStore(path)
    try:
        for topic in names:
            async for record in log.read(topic):
                store.apply_batch([to_item(decode_record(record))])
        return store.digest()
    finally:
        store.close()


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory (where a forked rebuild keeps its batch files)."""
    path = tmp_path / "scratch"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


async def test_batched_rebuild_equals_an_event_at_a_time_fold(
    tmp_path: Path, scratch: Path, v0_jobfailed: None
) -> None:
    log, names = await seed(tmp_path / "log.sqlite")
    try:
        expected = await one_by_one(log, names, tmp_path / "ref.sqlite")
        forked = await rebuild(log, tmp_path / "a.sqlite", names, batch_size=13, fork=True)
        local = await rebuild(log, tmp_path / "b.sqlite", names, batch_size=13, fork=False)
        whole = await rebuild(log, tmp_path / "c.sqlite", names, fork=True)
    finally:
        await log.close()
    assert forked == local == whole == expected
    store = ProjectionStore(tmp_path / "a.sqlite")  # a complete, usable store
    assert store.digest() == expected
    statuses = {s for s, n in store.queries.status_counts().items() if n}
    assert statuses == {"completed", "failed", "cancelled", "running"}
    store.close()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("a.")) == ["a.sqlite"]
    assert not list(scratch.iterdir())


async def test_the_child_reloads_jobs_once_its_cache_is_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log, names = await seed(tmp_path / "log.sqlite")
    try:
        expected = await one_by_one(log, names, tmp_path / "ref.sqlite")
        # every batch fills the cache: the child drops it and reads jobs back from the store
        monkeypatch.setattr("tabstream.projection.batch.CACHE_MAX", 1)
        forked = await rebuild(log, tmp_path / "a.sqlite", names, batch_size=9, fork=True)
        local = await rebuild(log, tmp_path / "b.sqlite", names, batch_size=9, fork=False)
    finally:
        await log.close()
    assert forked == local == expected


async def test_until_stops_each_partition_there(tmp_path: Path) -> None:
    log, names = await seed(tmp_path / "log.sqlite", n_jobs=3)
    try:
        follower = log.follower(names)
        await follower.start()
        ends = await follower.end_offsets()
        await follower.stop()
        until = {tp: end // 2 for tp, end in ends.items() if end}
        live = ProjectionStore(tmp_path / "live.sqlite")
        for topic in names:
            async for record in log.read(topic):
                if record.offset < until.get(record.tp, 0):
                    live.apply_batch([to_item(decode_record(record))])
        for fork in (True, False):
            digest = await rebuild(log, tmp_path / f"{fork}.sqlite", names, until, fork=fork)
            assert digest == live.digest()
        live.close()
    finally:
        await log.close()


async def test_a_failing_child_fails_the_rebuild_and_leaves_the_target_alone(
    tmp_path: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log, names = await seed(tmp_path / "log.sqlite", n_jobs=2)
    target = tmp_path / "p.sqlite"
    target.write_bytes(b"previous")

    def boom(*_: object) -> None:
        raise RuntimeError("boom in the fold")

    monkeypatch.setattr("tabstream.projection.tables.trial_row", boom)  # inherited by the fork
    try:
        with pytest.raises(RebuildError, match="boom in the fold"):
            await rebuild(log, target, names, batch_size=5, fork=True)
    finally:
        await log.close()
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("p.")] == ["p.sqlite"]
    assert not list(scratch.iterdir())


async def test_a_killed_child_fails_the_rebuild(
    tmp_path: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log, names = await seed(tmp_path / "log.sqlite", n_jobs=2)

    def die(*_: object) -> None:
        import os

        os._exit(3)

    monkeypatch.setattr("tabstream.projection.tables.trial_row", die)
    try:
        with pytest.raises(RebuildError, match="died"):
            await rebuild(log, tmp_path / "p.sqlite", names, batch_size=5, fork=True)
    finally:
        await log.close()
    assert not list(tmp_path.glob("p.sqlite*")) and not list(scratch.iterdir())
