"""An idempotent submission retried on another API replica, whose projection has not seen the
first one yet, still maps to one job: the job id derives from the tenant and the key."""

from __future__ import annotations

import pytest

from tabstream.producer_api.job_ids import keyed_job_id
from tabstream.schemas import RunRequested, decode
from tests.api.conftest import AUTH_A, AUTH_B, Api, run_body, upload


def test_keyed_job_ids_are_stable_per_tenant_key_and_server_key() -> None:
    one = keyed_job_id(b"k" * 32, "acme", "retry-1")
    assert one == keyed_job_id(b"k" * 32, "acme", "retry-1")
    assert one != keyed_job_id(b"k" * 32, "other", "retry-1")
    assert one != keyed_job_id(b"k" * 32, "acme", "retry-2")
    assert one != keyed_job_id(b"j" * 32, "acme", "retry-1")


async def test_a_retry_on_a_replica_that_has_not_seen_the_key_gets_the_same_job(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset_id = await upload(api.client)
    headers = {**AUTH_A, "Idempotency-Key": "retry-1"}
    first = await api.client.post("/v1/trainer/run", json=run_body(dataset_id), headers=headers)
    assert first.status_code == 202
    # Another replica: nothing in its memory, and its projection lags behind the first command.
    api.ctx.recent_submissions.clear()
    monkeypatch.setattr(api.ctx.read_model, "find_idempotent", lambda *_: None)
    second = await api.client.post("/v1/trainer/run", json=run_body(dataset_id), headers=headers)
    assert second.status_code == 202
    assert second.json()["job_id"] == first.json()["job_id"]
    commands = [decode(r.value) async for r in api.ctx.log.read(api.ctx.topics.commands("cpu"))]
    assert len(commands) == 2
    assert {str(c.payload.job_id) for c in commands if isinstance(c.payload, RunRequested)} == {
        first.json()["job_id"]
    }
    listing = (await api.client.get("/v1/jobs", headers=AUTH_A)).json()["items"]
    assert [j["job_id"] for j in listing] == [first.json()["job_id"]]
    other = await api.client.post(
        "/v1/trainer/run",
        json=run_body(dataset_id),
        headers={**AUTH_B, "Idempotency-Key": "retry-1"},
    )
    assert other.status_code == 404  # tenant-b has no such dataset: keys never cross tenants
