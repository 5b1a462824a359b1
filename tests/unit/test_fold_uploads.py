"""The projection's uploads: the first completion of an upload wins, within a batch and across
batches, live and on a rebuild alike; prediction jobs fold as jobs of kind ``predict``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tabstream.projection.sqlite_store import ProjectionStore
from tabstream.schemas import (
    Envelope,
    PredictionsWritten,
    PredictRequested,
    Producer,
    UploadCompleted,
    UploadCreated,
)
from tabstream.schemas.connections import FileUploadConnectionConfig, ResolvedSource

API = Producer(service="producer_api", instance="a1")
NOW = datetime(2026, 1, 1, tzinfo=UTC)
UPLOAD = uuid.UUID(int=7)


def env(payload: object, **kw: object) -> Envelope:
    return Envelope.wrap(payload, tenant="acme", producer=API, **kw)  # type: ignore[arg-type]


def completion(key: str) -> Envelope:
    return env(
        UploadCompleted(upload_id=UPLOAD, key=key, size_bytes=3, sha256="a" * 64, completed_at=NOW)
    )


def upload_log() -> list[Envelope]:
    created = UploadCreated(upload_id=UPLOAD, file_format="csv", expires_at=NOW, created_at=NOW)
    return [env(created), completion("uploads/x/first.csv"), completion("uploads/x/second.csv")]


@pytest.mark.parametrize("batches", [[3], [2, 1], [1, 1, 1]])
def test_the_first_completion_wins(tmp_path: Path, batches: list[int]) -> None:
    store = ProjectionStore(tmp_path / "p.sqlite")
    log, offset = upload_log(), 0
    for size in batches:
        store.apply_batch(
            [("ev", 0, offset + i, e) for i, e in enumerate(log[offset : offset + size])]
        )
        offset += size
    upload = store.queries.get_upload("acme", str(UPLOAD))
    assert upload is not None and upload["completion"]["key"] == "uploads/x/first.csv"
    assert store.queries.get_upload("other", str(UPLOAD)) is None
    digests = {store.digest()}
    rebuilt = ProjectionStore(tmp_path / "r.sqlite")
    rebuilt.apply_batch([("ev", 0, i, e) for i, e in enumerate(log)])
    digests.add(rebuilt.digest())
    assert len(digests) == 1


def test_a_prediction_job_folds_as_a_predict_job(tmp_path: Path) -> None:
    store = ProjectionStore(tmp_path / "p.sqlite")
    job, model = uuid.uuid4(), uuid.uuid4()
    source = ResolvedSource(
        connection_config=FileUploadConnectionConfig(id=UPLOAD), upload_key="uploads/x/a.csv"
    )
    requested = PredictRequested(
        job_id=job,
        model_id=model,
        model_sha256="b" * 64,
        source=source,
        pool="cpu",
        submitted_at=NOW,
    )
    written = PredictionsWritten(
        job_id=job, model_id=model, uri="file:///p", rows=4, sha256="c" * 64
    )
    worker = Producer(service="worker", instance="w")
    events = [env(requested), Envelope.wrap(written, tenant="acme", producer=worker, attempt=1)]
    store.apply_batch([("ev", 0, i, e) for i, e in enumerate(events)])
    got = store.queries.get_job("acme", str(job))
    assert got is not None and got["kind"] == "predict" and got["status"] == "pending"
    assert got["request"]["model_id"] == str(model)
    assert got["predictions"] == {
        "model_id": str(model),
        "uri": "file:///p",
        "rows": 4,
        "sha256": "c" * 64,
    }
