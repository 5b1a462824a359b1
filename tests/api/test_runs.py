"""POST /v1/trainer/run: validation, dataset checks, routing, secrets, idempotency, cancel."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tabstream.adapters.bus.embedded import EmbeddedEventLog
from tabstream.adapters.bus.partitioner import partition_for
from tabstream.adapters.bus.port import OutgoingRecord, Position
from tabstream.bootstrap.api import build_api
from tabstream.schemas import decode
from tests.api import workers
from tests.api.conftest import AUTH_A, AUTH_B, Api, run_body, running, settings, submit, upload


async def _commands(api: Api, pool: str = "cpu") -> list[dict[str, Any]]:
    out = []
    async for record in api.ctx.log.read(api.ctx.topics.commands(pool)):
        out.append(json.loads(record.value))
    return out


async def test_run_is_202_and_visible_at_once(api: Api) -> None:
    dataset_id = await upload(api.client)
    r = await api.client.post("/v1/trainer/run", json=run_body(dataset_id), headers=AUTH_A)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "pending" and body["dataset_id"] == dataset_id
    job = await api.client.get(f"/v1/jobs/{body['job_id']}", headers=AUTH_A)
    assert job.status_code == 200 and job.json()["status"] == "pending"
    assert job.json()["request"]["task"]["label_column"] == "y"


async def test_a_burst_of_runs_gets_version_7_ids_on_the_partitions_their_keys_map_to(
    api: Api,
) -> None:
    dataset_id = await upload(api.client)
    burst = [
        api.client.post("/v1/trainer/run", json=run_body(dataset_id), headers=AUTH_A)
        for _ in range(12)
    ]
    job_ids = {uuid.UUID(r.json()["job_id"]) for r in await asyncio.gather(*burst)}
    assert len(job_ids) == 12 and {j.version for j in job_ids} == {7}
    topic = api.ctx.topics.commands("cpu")
    partitions = await api.ctx.log.partitions(topic)
    landed = {
        uuid.UUID(record.key): record.partition
        async for record in api.ctx.log.read(topic)
        if uuid.UUID(record.key) in job_ids
    }
    assert landed == {j: partition_for(str(j), partitions) for j in job_ids}
    assert api.ctx.job_ids[topic].partitions == partitions


async def test_unknown_or_foreign_dataset_is_404(api: Api) -> None:
    dataset_id = await upload(api.client, headers=AUTH_B)
    for ds in [dataset_id, "3c90c3cc-0d44-4b50-8888-8dd25736052a"]:
        r = await api.client.post("/v1/trainer/run", json=run_body(ds), headers=AUTH_A)
        assert r.status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"n_trials": 0}, "n_trials"),
        ({"model_types": ["nope"]}, "model_types"),
        ({"strategy": "grid"}, "strategy"),
        ({"task": {"task_kind": "regression"}}, "label_column"),
        ({"dataset_id": "not-a-uuid"}, "dataset_id"),
        ({"unknown_field": 1}, "unknown_field"),
    ],
)
async def test_schema_errors_are_422_naming_the_field(
    api: Api, change: dict[str, Any], field: str
) -> None:
    body = {**run_body("3c90c3cc-0d44-4b50-8888-8dd25736052a"), **change}
    r = await api.client.post("/v1/trainer/run", json=body, headers=AUTH_A)
    assert r.status_code == 422
    assert any(field in json.dumps(e["loc"]) + e["msg"] for e in r.json()["detail"]), r.text


@pytest.mark.parametrize(
    ("change", "loc_tail", "needle"),
    [
        ({"task": {"label_column": "nope", "task_kind": "regression"}}, "label_column", "'nope'"),
        ({"task": {"label_column": "label", "task_kind": "regression"}}, "label_column", "numeric"),
        ({"filter": {"kind": "cmp", "col": "ghost", "op": "eq", "value": 1}}, "col", "'ghost'"),
        ({"filter": {"kind": "cmp", "col": "x1", "op": "gt", "value": "abc"}}, "value", "x1"),
        (
            {
                "filter": {
                    "kind": "not",
                    "arg": {"kind": "cmp", "col": "cat", "op": "in", "value": [1]},
                }
            },
            "value",
            "cat",
        ),
    ],
)
async def test_dataset_column_errors_are_422(
    api: Api, change: dict[str, Any], loc_tail: str, needle: str
) -> None:
    dataset_id = await upload(api.client)
    r = await api.client.post(
        "/v1/trainer/run", json={**run_body(dataset_id), **change}, headers=AUTH_A
    )
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail[0]["loc"][-1] == loc_tail and needle in detail[0]["msg"]


async def test_classification_with_string_label_is_fine(api: Api) -> None:
    dataset_id = await upload(api.client)
    body = {**run_body(dataset_id), "task": {"label_column": "label", "task_kind": "binclass"}}
    assert (await api.client.post("/v1/trainer/run", json=body, headers=AUTH_A)).status_code == 202


async def test_teacher_headers_are_encrypted_in_the_log(api: Api) -> None:
    dataset_id = await upload(api.client)
    extra = {
        "teacher_predict_url": "https://teacher.example/predict",
        "teacher_predict_headers": {"Authorization": "Bearer very-secret-value"},
    }
    job_id = await submit(api.client, dataset_id, **extra)
    raw = [r.value async for r in api.ctx.log.read(api.ctx.topics.commands("cpu"))]
    assert raw and all(b"very-secret-value" not in v for v in raw)
    command = decode(raw[-1]).payload
    assert command.request.teacher_predict_headers == {"Authorization": "***"}
    assert api.ctx.cipher.decrypt(command.encrypted_headers) == extra["teacher_predict_headers"]
    job = (await api.client.get(f"/v1/jobs/{job_id}", headers=AUTH_A)).json()
    assert "very-secret-value" not in json.dumps(job)
    events = (await api.client.get(f"/v1/jobs/{job_id}/events", headers=AUTH_A)).text
    assert "very-secret-value" not in events


async def test_idempotency_same_key_same_body_replays(api: Api) -> None:
    dataset_id = await upload(api.client)
    headers = {**AUTH_A, "Idempotency-Key": "k-1"}
    first = await api.client.post("/v1/trainer/run", json=run_body(dataset_id), headers=headers)
    second = await api.client.post("/v1/trainer/run", json=run_body(dataset_id), headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["job_id"] == second.json()["job_id"]
    assert len(await _commands(api)) == 1
    other = await api.client.post(
        "/v1/trainer/run", json=run_body(dataset_id, n_trials=9), headers=headers
    )
    assert other.status_code == 409
    # the key is per tenant
    await upload(api.client, headers=AUTH_B)
    assert len(await _commands(api)) == 1


async def test_idempotency_concurrent_identical_requests(api: Api) -> None:
    dataset_id = await upload(api.client)
    headers = {**AUTH_A, "Idempotency-Key": "k-race"}
    replies = await asyncio.gather(
        *[
            api.client.post("/v1/trainer/run", json=run_body(dataset_id), headers=headers)
            for _ in range(8)
        ]
    )
    assert {r.status_code for r in replies} == {202}
    assert len({r.json()["job_id"] for r in replies}) == 1
    assert len(await _commands(api)) == 1


async def test_idempotency_survives_restart(tmp_path: Path) -> None:
    """After a restart the replay comes from the projection (rebuilt from the log)."""
    body_headers = {**AUTH_A, "Idempotency-Key": "k-durable"}
    async for api in running(build_api(settings(tmp_path))):
        dataset_id = await upload(api.client)
        first = await api.client.post(
            "/v1/trainer/run", json=run_body(dataset_id), headers=body_headers
        )
    async for api in running(build_api(settings(tmp_path))):
        again = await api.client.post(
            "/v1/trainer/run", json=run_body(dataset_id), headers=body_headers
        )
        assert api.ctx.recent_submissions == {}
        assert again.json()["job_id"] == first.json()["job_id"]


async def test_pool_routing(tmp_path: Path) -> None:
    async for api in running(build_api(settings(tmp_path, pools="gpu,cpu"))):
        dataset_id = await upload(api.client)
        await submit(api.client, dataset_id, model_types=["xgboost"])
        await submit(api.client, dataset_id, model_types=["xgboost", "tabm"])
        await submit(api.client, dataset_id, model_types=None)
        assert len(await _commands(api, "cpu")) == 1
        assert len(await _commands(api, "gpu")) == 2


async def test_cancel(api: Api) -> None:
    dataset_id = await upload(api.client)
    job_id = await submit(api.client, dataset_id)
    assert (await api.client.post(f"/v1/jobs/{job_id}/cancel", headers=AUTH_B)).status_code == 404
    r = await api.client.post(f"/v1/jobs/{job_id}/cancel", headers=AUTH_A)
    assert r.status_code == 202, r.text
    control = [decode(rec.value) async for rec in api.ctx.log.read(api.ctx.topics.control)]
    assert [e.type for e in control] == ["CancelRequested"]
    await workers.start(api.ctx, "tenant-a", job_id)
    await workers.complete(api.ctx, "tenant-a", job_id)
    assert (await api.client.post(f"/v1/jobs/{job_id}/cancel", headers=AUTH_A)).status_code == 409
    unknown = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
    assert (await api.client.post(f"/v1/jobs/{unknown}/cancel", headers=AUTH_A)).status_code == 404


class StalledLog(EmbeddedEventLog):
    """An embedded log whose run commands are never acknowledged once ``stalled`` is set."""

    stalled = False

    async def publish(self, record: OutgoingRecord) -> Position:
        if self.stalled and ".commands." in record.topic:
            await asyncio.Event().wait()
        return await super().publish(record)


async def test_a_publish_never_acknowledged_is_a_503_within_the_submit_timeout(
    tmp_path: Path,
) -> None:
    cfg = settings(tmp_path, submit_timeout_s=0.3)
    log = StalledLog(cfg.data_dir / "log.sqlite")
    async for api in running(build_api(cfg, log=log)):
        dataset_id = await upload(api.client)
        log.stalled = True
        started = time.monotonic()
        r = await api.client.post("/v1/trainer/run", json=run_body(dataset_id), headers=AUTH_A)
        assert r.status_code == 503 and "did not acknowledge" in r.text
        assert 0.3 <= time.monotonic() - started < 0.3 + 0.1 + 0.5
        log.stalled = False
        assert await _commands(api) == []
        assert (await api.client.get("/v1/jobs", headers=AUTH_A)).json()["items"] == []
        await submit(api.client, dataset_id)  # the next one goes through
