"""The projection store: one transaction for state and offsets, resume, read API, digest."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest

from tabstream.adapters.bus.port import TopicPartition
from tabstream.projection.batch import Item
from tabstream.projection.sqlite_store import ProjectionStore
from tabstream.projection.synthetic import Synth
from tabstream.schemas import Envelope


def items(envs: list[Envelope], topic: str = "ev", start: int = 0) -> list[Item]:
    return [(topic, 0, start + i, e) for i, e in enumerate(envs)]


def world(n_jobs: int = 3) -> tuple[list[Envelope], list[str], str]:
    synth = Synth(11)
    ds = synth.dataset("acme")
    envs, ids = [ds], []
    for i in range(n_jobs):
        tenant = "acme" if i < n_jobs - 1 else "other"
        h = synth.job(tenant, ds.payload.dataset_id, outcome="completed" if i else "failed")  # type: ignore[union-attr]
        envs += h.streams["commands"] + h.streams["events"]
        ids.append(h.job_id)
    return envs, ids, str(ds.payload.dataset_id)  # type: ignore[union-attr]


@pytest.fixture
def store(tmp_path: Path) -> ProjectionStore:
    s = ProjectionStore(tmp_path / "p.sqlite")
    yield s  # type: ignore[misc]
    s.close()


def test_batch_is_atomic_state_and_offsets(
    store: ProjectionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    envs, ids, _ = world()
    store.apply_batch(items(envs[:5]))
    before, offsets = store.digest(), store.offsets()

    def crash(*_: object) -> None:
        raise RuntimeError("power cut mid-batch")

    monkeypatch.setattr("tabstream.projection.tables.model_row", crash)
    with pytest.raises(RuntimeError):
        store.apply_batch(items(envs[5:], start=5))
    assert store.digest() == before and store.offsets() == offsets
    monkeypatch.undo()
    store.apply_batch(items(envs[5:], start=5))
    assert store.offsets() == {TopicPartition("ev", 0): len(envs)}
    assert store.queries.get_job("acme", ids[1])["status"] == "completed"  # type: ignore[index]


def test_a_write_failing_mid_transaction_rolls_back_state_and_offsets(
    store: ProjectionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    envs, ids, _ = world()
    store.apply_batch(items(envs[:5]))
    before, offsets = store.digest(), store.offsets()
    # jobs and trials are written, then the offsets fail: the whole batch must go
    bad = "INSERT INTO no_such_table VALUES (?, ?, ?)"
    monkeypatch.setattr("tabstream.projection.tables.UPSERT_OFFSET", bad)
    with pytest.raises(sqlite3.OperationalError):
        store.apply_batch(items(envs[5:], start=5))
    assert store.digest() == before and store.offsets() == offsets
    monkeypatch.undo()
    store.apply_batch(items(envs[5:], start=5))
    assert store.offsets() == {TopicPartition("ev", 0): len(envs)}
    assert store.queries.get_job("acme", ids[1])["status"] == "completed"  # type: ignore[index]


def test_records_below_the_stored_offset_are_not_reapplied(store: ProjectionStore) -> None:
    envs, _, _ = world()
    store.apply_batch(items(envs))
    digest = store.digest()
    result = store.apply_batch(items(envs))
    assert result.already_applied == len(envs) and result.applied == 0
    assert store.digest() == digest


def test_state_survives_reopen(tmp_path: Path) -> None:
    envs, _ids, _ = world()
    first = ProjectionStore(tmp_path / "p.sqlite")
    first.apply_batch(items(envs[:10]))
    first.close()
    second = ProjectionStore(tmp_path / "p.sqlite")
    second.apply_batch(items(envs[10:], start=10))
    reference = ProjectionStore(tmp_path / "ref.sqlite")
    reference.apply_batch(items(envs))
    assert second.digest() == reference.digest()
    assert second.next_offset("ev", 0) == len(envs)


def test_undecodable_records_advance_the_offset(store: ProjectionStore) -> None:
    result = store.apply_batch([("ev", 3, 41, None)])
    assert result.undecodable == 1 and store.next_offset("ev", 3) == 42


def test_reads_are_scoped_by_tenant(store: ProjectionStore) -> None:
    envs, ids, dataset_id = world()
    store.apply_batch(items(envs))
    job = store.queries.get_job("acme", ids[0])
    assert job is not None and job["status"] == "failed" and "meta" not in job
    assert store.queries.get_job("other", ids[0]) is None
    assert store.queries.job_owner(ids[2]) == "other" and store.queries.job_owner("nope") is None
    assert store.queries.job_trials("other", ids[0]) is None
    trials = store.queries.job_trials("acme", ids[0])
    assert trials and [(t["row"], t["trial"]) for t in trials] == sorted(
        (t["row"], t["trial"]) for t in trials
    )
    assert store.queries.get_dataset("acme", dataset_id)["name"] == "houses"  # type: ignore[index]
    assert store.queries.get_dataset("other", dataset_id) is None
    models, _ = store.queries.list_models("acme")
    assert len(models) == 1 and store.queries.get_model("other", models[0]["model_id"]) is None
    assert store.queries.list_models("other", job_id=ids[2])[0][0]["job_id"] == ids[2]
    assert store.queries.status_counts() == {"failed": 1, "completed": 2}


def test_list_jobs_pages_newest_first_with_filters(store: ProjectionStore) -> None:
    synth = Synth(5)
    ds = uuid.uuid4()
    envs: list[Envelope] = []
    for i in range(7):
        h = synth.job(
            "acme", ds if i % 2 else uuid.uuid4(), outcome="running" if i < 3 else "completed"
        )
        envs += h.streams["commands"] + h.streams["events"]
    store.apply_batch(items(envs))
    seen, cursor = [], None
    while True:
        page, cursor = store.queries.list_jobs("acme", cursor=cursor, limit=3)
        seen += page
        if cursor is None:
            break
    assert len(seen) == 7
    keys = [(j["created_at"], j["job_id"]) for j in seen]
    assert keys == sorted(keys, reverse=True)
    running, _ = store.queries.list_jobs("acme", status="running")
    assert len(running) == 3 and {j["status"] for j in running} == {"running"}
    by_ds, _ = store.queries.list_jobs("acme", dataset_id=str(ds))
    assert len(by_ds) == 3
    assert store.queries.list_jobs("nobody") == ([], None)
    with pytest.raises(ValueError):
        store.queries.list_jobs("acme", cursor="!!not-a-cursor")


def test_find_idempotent(store: ProjectionStore) -> None:
    synth = Synth(9)
    h = synth.job("acme", uuid.uuid4())
    run = h.streams["commands"][0]
    keyed = run.model_copy(
        update={"payload": run.payload.model_copy(update={"idempotency_key": "k1"})}
    )
    store.apply_batch(items([keyed]))
    assert store.queries.find_idempotent("acme", "k1") == (h.job_id, "d" * 64)
    assert store.queries.find_idempotent("other", "k1") is None
    assert store.queries.find_idempotent("acme", "k2") is None


def test_digest_is_stable_and_sensitive(tmp_path: Path) -> None:
    envs, _, _ = world()
    a, b = ProjectionStore(tmp_path / "a.sqlite"), ProjectionStore(tmp_path / "b.sqlite")
    a.apply_batch(items(envs))
    for i in range(0, len(envs), 4):
        b.apply_batch(items(envs[i : i + 4], start=i))
    assert a.digest() == b.digest()
    b.apply_batch([("ev", 1, 0, None)])
    assert a.digest() != b.digest()


def test_snapshot_reads_offsets_and_digest_together(store: ProjectionStore) -> None:
    envs, _, _ = world()
    store.apply_batch(items(envs))
    assert store.snapshot() == (store.offsets(), store.digest())
