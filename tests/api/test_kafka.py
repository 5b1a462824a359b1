"""The API on a real Kafka broker: happy path, broker unreachable (503), stop and recovery."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tabstream.bootstrap.api import build_api
from tabstream.schemas import decode
from tests.api import workers
from tests.api.conftest import AUTH_A, AUTH_B, run_body, running, settings, submit, upload

pytestmark = pytest.mark.kafka
ROOT = Path(__file__).resolve().parents[2]
PRIVATE_PORT = 19392


async def test_happy_path_on_kafka(tmp_path: Path, kafka_bootstrap: str, unique_name: str) -> None:
    app = build_api(settings(tmp_path, bus=f"kafka://{kafka_bootstrap}"), topic_prefix=unique_name)
    async for api in running(app):
        dataset_id = await upload(api.client)
        job_id = await submit(api.client, dataset_id)
        job = await api.client.get(f"/v1/jobs/{job_id}", headers=AUTH_A)
        assert job.status_code == 200 and job.json()["status"] == "pending"
        assert (await api.client.get(f"/v1/jobs/{job_id}", headers=AUTH_B)).status_code == 404
        headers = {**AUTH_A, "Idempotency-Key": "k"}
        a = await api.client.post("/v1/trainer/run", json=run_body(dataset_id), headers=headers)
        b = await api.client.post("/v1/trainer/run", json=run_body(dataset_id), headers=headers)
        assert a.json()["job_id"] == b.json()["job_id"]
        await workers.start(api.ctx, "tenant-a", job_id)
        await workers.complete(api.ctx, "tenant-a", job_id)
        events = await api.client.get(f"/v1/jobs/{job_id}/events", headers=AUTH_A)
        assert [e["type"] for e in events.json()["events"]] == [
            "RunRequested",
            "JobStarted",
            "JobCompleted",
        ]
        sse = await api.client.get(
            f"/v1/jobs/{job_id}/events", headers={**AUTH_A, "Accept": "text/event-stream"}
        )
        assert sse.text.count("\nevent: ") + sse.text.startswith("event: ") == 3
        assert (await api.client.get("/readyz")).status_code == 200


async def test_unreachable_broker_is_503_within_5s(tmp_path: Path, unique_name: str) -> None:
    app = build_api(settings(tmp_path, bus="kafka://127.0.0.1:1"), topic_prefix=unique_name)
    async for api in running(app):
        started = time.monotonic()
        r = await api.client.post(
            "/v1/datasets", files={"file": ("t.csv", b"a,y\n1,2\n")}, headers=AUTH_A
        )
        assert r.status_code == 503, r.text
        assert "unavailable" in r.json()["detail"]
        assert time.monotonic() - started < 5.5
        assert api.ctx.artifacts.keys("datasets") == []
        assert (await api.client.get("/readyz")).status_code == 503


def _broker(action: str) -> None:
    env = {**os.environ, "KAFKA_PORT": str(PRIVATE_PORT)}
    subprocess.run([str(ROOT / "scripts" / "kafka.sh"), action], env=env, check=True, timeout=120)


@pytest.mark.slow
async def test_broker_stop_and_recovery_loses_no_202(tmp_path: Path, unique_name: str) -> None:
    """A private broker (never the shared one) is stopped mid-test and started again."""
    _broker("start")
    try:
        cfg = settings(tmp_path, bus=f"kafka://127.0.0.1:{PRIVATE_PORT}", submit_timeout_s=4)
        async for api in running(build_api(cfg, topic_prefix=unique_name)):
            dataset_id = await upload(api.client)
            accepted = [await submit(api.client, dataset_id) for _ in range(3)]
            commands = api.ctx.topics.commands("cpu")
            logged = {str(decode(r.value).aggregate_id) async for r in api.ctx.log.read(commands)}
            assert set(accepted) <= logged
            _broker("stop")
            started = time.monotonic()
            r = await api.client.post("/v1/trainer/run", json=run_body(dataset_id), headers=AUTH_A)
            assert r.status_code == 503 and time.monotonic() - started < 5.5
            await api.client.aclose()
    finally:
        _broker("stop")
    _broker("start")
    try:
        cfg = settings(tmp_path / "again", bus=f"kafka://127.0.0.1:{PRIVATE_PORT}")
        async for api in running(build_api(cfg, topic_prefix=unique_name)):
            dataset_id = await upload(api.client)
            after = [await submit(api.client, dataset_id) for _ in range(3)]
            commands = api.ctx.topics.commands("cpu")
            logged = {str(decode(r.value).aggregate_id) async for r in api.ctx.log.read(commands)}
            assert set(after) <= logged
    finally:
        _broker("stop")
