"""Prediction jobs in the worker: PredictRequested is a job command beside RunRequested; the
runner checks the model's tenant and digest against the log before a child runs; JobStarted,
PredictionsWritten and JobCompleted (with the stored result.json) reach the events topic."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from tabstream.adapters.artifacts.local import LocalArtifactStore
from tabstream.adapters.bus.embedded import EmbeddedEventLog
from tabstream.adapters.bus.port import OutgoingRecord, Record
from tabstream.consumer import Worker, WorkerConfig, WorkerTopics
from tabstream.consumer.commands import PoisonCommand, parse_command
from tabstream.consumer.ledger import JobLedger
from tabstream.consumer.protocol import JobSpec, parse_line
from tabstream.consumer.runner import _spec, _started
from tabstream.schemas.connections import FileUploadConnectionConfig, ResolvedSource
from tabstream.schemas.events import (
    Envelope,
    EventPayload,
    JobStarted,
    ModelRegistered,
    PredictionsWritten,
    PredictRequested,
    Producer,
    encode,
    headers,
)
from tests.faults.worker_support import (
    DATA,
    TENANT,
    envelopes,
    job_events,
    submit,
    types_of,
    write_dataset,
)

API = Producer(service="producer_api", instance="test")
SHA = "a" * 64


class _NoTail:
    def route(self, topic: str, handler: Any) -> None:
        pass


def _record(topic: str, payload: EventPayload, tenant: str = TENANT) -> Record:
    env = Envelope.wrap(payload, tenant=tenant, producer=API)
    return Record(topic, 0, 0, env.aggregate_id, encode(env), headers(env))


def _predict_cmd(model_id: uuid.UUID, sha: str = SHA, key: str = "uploads/u/data") -> Any:
    source = ResolvedSource(
        connection_config=FileUploadConnectionConfig(id=uuid.uuid4()), upload_key=key
    )
    return PredictRequested(job_id=uuid.uuid4(), model_id=model_id, model_sha256=sha,
                            source=source, pool="cpu", submitted_at=datetime.now(UTC))  # fmt: skip


def _registered(model_id: uuid.UUID) -> ModelRegistered:
    return ModelRegistered.model_validate(
        {
            "model_id": str(model_id),
            "job_id": str(uuid.uuid4()),
            "kind": "single",
            "families": ["xgboost"],
            "uri": "file:///m",
            "sha256": SHA,
            "metrics": {},
            "task": {"task_kind": "binclass", "label_column": "y"},
            "features": [],
            "created_at": datetime.now(UTC).isoformat(),
        }
    )


def _ctx(model_id: uuid.UUID, owner: str) -> Any:
    ledger = JobLedger(_NoTail(), "events")  # type: ignore[arg-type]
    ledger.apply(_record("events", _registered(model_id), owner))
    config = WorkerConfig(artifacts_uri="file:///a")
    return SimpleNamespace(ledger=ledger, config=config, producer=API)


def test_parse_command_takes_predict_requested_and_still_refuses_events() -> None:
    model_id = uuid.uuid4()
    cmd = parse_command(_record("c", _predict_cmd(model_id)))
    assert cmd.predict is not None and cmd.job_id == str(cmd.predict.job_id)
    assert cmd.job_uuid == cmd.predict.job_id and cmd.tenant == TENANT
    with pytest.raises(TypeError, match="prediction job"):
        _ = cmd.run
    with pytest.raises(PoisonCommand, match="RunRequested or PredictRequested"):
        parse_command(_record("c", _registered(model_id)))


def test_runner_refuses_another_tenants_or_an_unknown_or_changed_model() -> None:
    model_id = uuid.uuid4()
    ctx = _ctx(model_id, TENANT)
    own = parse_command(_record("c", _predict_cmd(model_id)))
    spec = _spec(ctx, own, 1, SimpleNamespace())  # type: ignore[arg-type]
    assert spec.kind == "predict" and spec.dataset_key == "uploads/u/data"
    assert JobSpec.from_bytes(spec.to_bytes()) == spec
    assert PredictRequested.model_validate(spec.request) == own.predict
    started = _started(ctx, own, 1)
    assert (started.model_types, started.trials_total) == (["xgboost"], 0)
    assert started.default_models_chosen is False
    other = parse_command(_record("c", _predict_cmd(model_id), "tenant-b"))
    with pytest.raises(ValueError, match="not a registered model of this tenant"):
        _spec(ctx, other, 1, SimpleNamespace())  # type: ignore[arg-type]
    assert _started(ctx, other, 1).model_types == []  # nothing about another tenant's model
    unknown = parse_command(_record("c", _predict_cmd(uuid.uuid4())))
    with pytest.raises(ValueError, match="not a registered model of this tenant"):
        _spec(ctx, unknown, 1, SimpleNamespace())  # type: ignore[arg-type]
    changed = parse_command(_record("c", _predict_cmd(model_id, sha="b" * 64)))
    with pytest.raises(ValueError, match="does not match the sha256"):
        _spec(ctx, changed, 1, SimpleNamespace())  # type: ignore[arg-type]


def test_the_protocol_carries_predictions_written() -> None:
    written = PredictionsWritten(job_id=uuid.uuid4(), model_id=uuid.uuid4(), uri="file:///p",
                                 rows=3, sha256=SHA)  # fmt: skip
    body = {
        "kind": "event",
        "type": "PredictionsWritten",
        "payload": written.model_dump(mode="json"),
    }
    assert parse_line(json.dumps(body).encode()).payload == written


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[EmbeddedEventLog]:
    log = EmbeddedEventLog(tmp_path / "log.sqlite")
    await log.start()
    yield log
    await log.close()


async def _terminal(log: EmbeddedEventLog, topics: WorkerTopics, job: uuid.UUID) -> list[Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 90
    terminal = {"JobCompleted", "JobFailed", "JobCancelled"}
    while not terminal & set(
        types_of(events := job_events(await envelopes(log, topics.events), job))
    ):
        assert loop.time() < deadline, f"job {job} not terminal: {types_of(events)}"
        await asyncio.sleep(0.2)
    return events


async def test_the_worker_scores_a_tenants_model_and_refuses_another_tenant(
    log: EmbeddedEventLog, unique_name: str, tmp_path: Path
) -> None:
    topics, root = WorkerTopics(unique_name, "cpu"), tmp_path / "artifacts"
    store = LocalArtifactStore(root)
    dataset = write_dataset(root, rows=150)
    config = WorkerConfig(prefix=topics.prefix, artifacts_uri=root.as_uri(), instance="w-pred")
    worker = Worker(log, config)
    await worker.start()
    try:
        trained = await _terminal(log, topics, await submit(log, topics, dataset, n_trials=1))
        (model,) = [e.payload for e in trained if isinstance(e.payload, ModelRegistered)]
        rows = pq.read_table(DATA / "credit_g.parquet").slice(150, 60)
        buf = io.BytesIO()
        pacsv.write_csv(rows, buf)
        store.put_bytes("uploads/up1/data", buf.getvalue())
        cmd = _predict_cmd(model.model_id, model.sha256, "uploads/up1/data")
        stranger = _predict_cmd(model.model_id, model.sha256, "uploads/up1/data")
        for payload, tenant in ((cmd, TENANT), (stranger, "tenant-b")):
            env = Envelope.wrap(payload, tenant=tenant, producer=API)
            await log.publish(
                OutgoingRecord(topics.commands, env.aggregate_id, encode(env), headers(env))
            )
        ours = await _terminal(log, topics, cmd.job_id)
        theirs = await _terminal(log, topics, stranger.job_id)
    finally:
        await worker.stop()
    assert trained[-1].payload.result_uri == store.uri(
        f"jobs/{trained[0].aggregate_id}/result.json"
    )
    assert types_of(ours) == ["JobStarted", "PredictionsWritten", "JobCompleted"]
    started, written, completed = (e.payload for e in ours)
    assert isinstance(started, JobStarted) and started.model_types == ["xgboost"]
    assert (
        written.rows == 60
        and store.read_parquet(f"predictions/{cmd.job_id}/predictions.parquet").num_rows == 60
    )
    assert completed.result_uri == store.uri(f"jobs/{cmd.job_id}/result.json")
    assert types_of(theirs) == ["JobStarted", "JobFailed"]
    failed = theirs[-1].payload
    assert (
        failed.reason == "invalid_input" and "not a registered model of this tenant" in failed.error
    )
    assert not store.exists(f"predictions/{stranger.job_id}/predictions.parquet")
