"""GET /v1/results in the reference API's shape, and batch predict jobs' submission and
results, through HTTP (the worker's side is played by publishing its events)."""

from __future__ import annotations

import uuid
from typing import Any

import pyarrow as pa
import pytest

from tabstream.schemas import (
    JobCancelled,
    JobCompleted,
    JobFailed,
    PredictionsWritten,
    PredictRequested,
    decode,
)
from tests.api import workers
from tests.api.conftest import AUTH_A, AUTH_B, Api, parquet_bytes, submit, upload
from tests.api.test_models_support import register, train
from tests.api.test_reference_uploads import uploaded


@pytest.fixture(autouse=True)
def _threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABSTREAM_FAMILY_THREADS", "2")


async def result(api: Api, job_id: str, headers: Any = None) -> Any:
    r = await api.client.get(f"/v1/results/{job_id}", headers=headers or AUTH_A)
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_trainer_result_names_the_winner_and_its_bundle(api: Api) -> None:
    job_id = await submit(api.client, await upload(api.client))
    model_id = uuid.uuid4()
    store = api.ctx.artifacts
    store.put_bytes(f"models/{model_id}/manifest.json", b"{}")
    store.put_bytes(f"models/{model_id}/families/xgboost.ubj", b"x")
    result_uri = store.put_bytes(f"jobs/{job_id}/result.json", b"{}")
    await workers.start(api.ctx, "tenant-a", job_id)
    done = JobCompleted(
        job_id=uuid.UUID(job_id),
        leaderboard=[],
        best_model_id=model_id,
        duration_s=2.0,
        result_uri=result_uri,
    )
    await workers.emit(api.ctx, "tenant-a", done, 1)
    out = await result(api, job_id)
    assert out["status"] == "completed" and out["completed_at"]
    assert out["result_data"]["model_id"] == str(model_id)
    assert out["result_data"]["winner_uris"] == [
        f"models/{model_id}/families/xgboost.ubj",
        f"models/{model_id}/manifest.json",
    ]
    assert out["result_uri"] == f"jobs/{job_id}/result.json"


async def test_a_cancelled_job_is_failed_saying_so_and_jobs_keeps_cancelled(api: Api) -> None:
    job_id = await submit(api.client, await upload(api.client))
    await api.client.post(f"/v1/jobs/{job_id}/cancel", headers=AUTH_A)
    await workers.emit(api.ctx, "tenant-a", JobCancelled(job_id=uuid.UUID(job_id)), 0)
    out = await result(api, job_id)
    assert out["status"] == "failed" and out["result_data"] is None
    assert out["error_message"].startswith("cancelled")
    job = (await api.client.get(f"/v1/jobs/{job_id}", headers=AUTH_A)).json()
    assert job["status"] == "cancelled"


async def test_a_failed_job_has_its_error(api: Api) -> None:
    job_id = await submit(api.client, await upload(api.client))
    failed = JobFailed(job_id=uuid.UUID(job_id), error="boom", reason="training_error", attempt=1)
    await workers.emit(api.ctx, "tenant-a", failed, 0)
    out = await result(api, job_id)
    assert out["status"] == "failed" and out["error_message"] == "training_error: boom"


async def test_a_running_job_is_202_with_retry_after(api: Api) -> None:
    job_id = await submit(api.client, await upload(api.client))
    await workers.start(api.ctx, "tenant-a", job_id)
    r = await api.client.get(f"/v1/results/{job_id}", headers=AUTH_A)
    assert r.status_code == 202 and r.headers["retry-after"] == "5"
    assert r.json()["status"] == "running"


async def _model(api: Api) -> str:
    events, _ = train(api, "credit_g")
    return await register(api, events)


async def test_predict_job_submission_and_its_result(api: Api) -> None:
    model_id = await _model(api)
    config = await uploaded(api, b"a,b\n1,2\n")
    body = {"dataset": {"connection_config": config, "columns": [{"name": "a"}]}}
    r = await api.client.post(f"/v1/models/{model_id}/predict", json=body, headers=AUTH_A)
    assert r.status_code == 202, r.text
    submitted = r.json()
    assert set(submitted) == {"job_id", "status", "message"} and submitted["status"] == "pending"
    job_id = submitted["job_id"]
    commands = api.ctx.log.read(api.ctx.topics.commands("cpu"))
    (command,) = [decode(rec.value).payload async for rec in commands]
    assert isinstance(command, PredictRequested) and str(command.job_id) == job_id
    assert command.source.upload_key and command.source.columns == ["a"]
    job = (await api.client.get(f"/v1/jobs/{job_id}", headers=AUTH_A)).json()
    assert job["kind"] == "predict" and job["request"]["model_id"] == model_id
    assert (await api.client.get(f"/v1/results/{job_id}", headers=AUTH_A)).status_code == 202

    predictions = parquet_bytes(pa.table({"prediction": [1.0]}))
    key = f"predictions/{job_id}/predictions.parquet"
    uri = api.ctx.artifacts.put_bytes(key, predictions)
    jid = uuid.UUID(job_id)
    await workers.start(api.ctx, "tenant-a", job_id)
    written = PredictionsWritten(
        job_id=jid, model_id=uuid.UUID(model_id), uri=uri, rows=1, sha256="0" * 64
    )
    await workers.emit(api.ctx, "tenant-a", written, 1)
    done = JobCompleted(job_id=jid, leaderboard=[], best_model_id=model_id, duration_s=0.1)
    await workers.emit(api.ctx, "tenant-a", done, 2)

    out = await result(api, job_id)
    data = out["result_data"]
    assert out["status"] == "completed" and data["result_uri"] == key and data["rows"] == 1
    download = await api.client.get(data["presigned_url"])  # no Authorization needed
    assert download.status_code == 200 and download.content == predictions
    tampered = data["presigned_url"].replace("tenant=tenant-a", "tenant=tenant-b")
    assert (await api.client.get(tampered)).status_code == 403
    assert (await api.client.get(f"/v1/results/{job_id}", headers=AUTH_B)).status_code == 404


async def test_only_job_outputs_can_be_downloaded(api: Api) -> None:
    dataset_id = await upload(api.client)
    key = f"datasets/{dataset_id}/data.parquet"
    query = api.ctx.signed_urls.query("download", key, "tenant-a", 60)
    assert (await api.client.get(f"/v1/files/{key}?{query}")).status_code == 404


async def test_predict_job_with_a_bad_dataset_is_422_and_nothing_is_sent(api: Api) -> None:
    model_id = await _model(api)
    path = f"/v1/models/{model_id}/predict"
    for dataset, loc in (
        ({"connection_config": {"connector_type": "snowflake"}}, "connector_type"),
        ({"connection_config": {"connector_type": "file_upload", "id": str(uuid.uuid4())}}, "id"),
        ({"connection_config": {"connector_type": "s3", "uri": "http://x/y"}}, "uri"),
    ):
        r = await api.client.post(path, json={"dataset": dataset}, headers=AUTH_A)
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"][-1] == loc, r.json()
    commands = [rec async for rec in api.ctx.log.read(api.ctx.topics.commands("cpu"))]
    assert commands == []
    unknown = f"/v1/models/{uuid.uuid4()}/predict"
    config = await uploaded(api)
    r = await api.client.post(
        unknown, json={"dataset": {"connection_config": config}}, headers=AUTH_A
    )
    assert r.status_code == 404
