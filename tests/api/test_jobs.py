"""Job queries: list, detail, results, event history and the live SSE stream."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.api import workers
from tests.api.conftest import AUTH_A, AUTH_B, Api, submit, upload

UNKNOWN = "3c90c3cc-0d44-4b50-8888-8dd25736052a"


async def test_list_filters_and_pages(api: Api) -> None:
    ds1, ds2 = await upload(api.client), await upload(api.client)
    jobs = [await submit(api.client, ds1) for _ in range(3)] + [await submit(api.client, ds2)]
    await workers.start(api.ctx, "tenant-a", jobs[0])
    r = await api.client.get("/v1/jobs", params={"limit": 2}, headers=AUTH_A)
    page1 = r.json()
    assert len(page1["items"]) == 2 and page1["next_cursor"]
    page2 = (
        await api.client.get(
            "/v1/jobs", params={"limit": 2, "cursor": page1["next_cursor"]}, headers=AUTH_A
        )
    ).json()
    seen = [j["job_id"] for j in page1["items"] + page2["items"]]
    assert sorted(seen) == sorted(jobs) and page2["next_cursor"] is None
    by_ds = (await api.client.get("/v1/jobs", params={"dataset_id": ds2}, headers=AUTH_A)).json()
    assert [j["job_id"] for j in by_ds["items"]] == [jobs[3]]
    running = (
        await api.client.get("/v1/jobs", params={"status": "running"}, headers=AUTH_A)
    ).json()
    assert [j["job_id"] for j in running["items"]] == [jobs[0]]
    assert (await api.client.get("/v1/jobs", headers=AUTH_B)).json()["items"] == []
    bad = await api.client.get("/v1/jobs", params={"cursor": "garbage"}, headers=AUTH_A)
    assert bad.status_code == 422


async def test_detail_and_result_of_a_completed_job(api: Api) -> None:
    job_id = await submit(api.client, await upload(api.client))
    pending = await api.client.get(f"/v1/results/{job_id}", headers=AUTH_A)
    assert pending.status_code == 202 and pending.headers["retry-after"] == "5"
    assert pending.json() == {
        "job_id": job_id,
        "status": "pending",
        "message": "job is pending; no result yet",
    }
    await workers.start(api.ctx, "tenant-a", job_id)
    await workers.complete(api.ctx, "tenant-a", job_id)
    job = (await api.client.get(f"/v1/jobs/{job_id}", headers=AUTH_A)).json()
    assert job["status"] == "completed" and job["attempts"][0]["attempt"] == 1
    assert job["leaderboard"][0]["family"] == "xgboost"
    result = (await api.client.get(f"/v1/results/{job_id}", headers=AUTH_A)).json()
    assert result["status"] == "completed" and result["completed_at"]
    assert result["result_data"]["leaderboard"][0]["metrics"] == {"rmse": 0.5}


async def test_cross_tenant_and_unknown_ids_are_404(api: Api) -> None:
    job_id = await submit(api.client, await upload(api.client))
    sse = {"Accept": "text/event-stream"}
    for jid in [job_id, UNKNOWN]:
        for path in [
            f"/v1/jobs/{jid}",
            f"/v1/results/{jid}",
            f"/v1/jobs/{jid}/events",
            f"/v1/models/{jid}",
        ]:
            assert (await api.client.get(path, headers=AUTH_B)).status_code == 404, path
        assert (
            await api.client.get(f"/v1/jobs/{jid}/events", headers={**AUTH_B, **sse})
        ).status_code == 404
        assert (await api.client.post(f"/v1/jobs/{jid}/cancel", headers=AUTH_B)).status_code == 404


async def test_event_history_in_order(api: Api) -> None:
    job_id = await submit(api.client, await upload(api.client))
    await api.client.post(f"/v1/jobs/{job_id}/cancel", headers=AUTH_A)
    await workers.start(api.ctx, "tenant-a", job_id)
    await workers.complete(api.ctx, "tenant-a", job_id)
    r = await api.client.get(f"/v1/jobs/{job_id}/events", headers=AUTH_A)
    types = [e["type"] for e in r.json()["events"]]
    assert types == ["RunRequested", "CancelRequested", "JobStarted", "JobCompleted"]


async def _read_sse(response: httpx.Response) -> list[dict[str, Any]]:
    frames, current = [], {}
    async for line in response.aiter_lines():
        if line == "":
            if current:
                frames.append(current)
            current = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(": ")
            current[field] = value
    return frames


async def test_sse_streams_live_until_terminal_and_resumes(api: Api) -> None:
    job_id = await submit(api.client, await upload(api.client))
    headers = {**AUTH_A, "Accept": "text/event-stream"}

    async def consume() -> list[dict[str, Any]]:
        async with api.client.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith(
                "text/event-stream"
            )
            return await _read_sse(r)

    reader = asyncio.create_task(consume())
    await asyncio.sleep(0.3)
    await workers.start(api.ctx, "tenant-a", job_id)
    await workers.complete(api.ctx, "tenant-a", job_id)
    frames = await asyncio.wait_for(reader, 10)
    assert [f["event"] for f in frames] == ["RunRequested", "JobStarted", "JobCompleted"]
    assert [f["id"] for f in frames] == ["1", "2", "3"]
    assert json.loads(frames[2]["data"])["payload"]["job_id"] == job_id
    resumed = headers | {"Last-Event-ID": "2"}
    async with api.client.stream("GET", f"/v1/jobs/{job_id}/events", headers=resumed) as r:
        again = await _read_sse(r)
    assert [(f["id"], f["event"]) for f in again] == [("3", "JobCompleted")]


async def test_sse_heartbeats(api: Api) -> None:
    api.ctx.limits = type(api.ctx.limits)(sse_heartbeat_s=0.05)
    job_id = await submit(api.client, await upload(api.client))
    headers = {**AUTH_A, "Accept": "text/event-stream"}

    async def finish_later() -> None:
        await asyncio.sleep(0.4)
        await workers.start(api.ctx, "tenant-a", job_id)
        await workers.complete(api.ctx, "tenant-a", job_id)

    finisher = asyncio.create_task(finish_later())
    r = await api.client.get(f"/v1/jobs/{job_id}/events", headers=headers)
    await finisher
    assert ": heartbeat" in r.text.splitlines()
    assert r.text.rstrip().endswith("}")


async def test_schemas_openapi_and_models(api: Api) -> None:
    schemas = (await api.client.get("/v1/schemas/events", headers=AUTH_A)).json()
    assert {"Envelope", "RunRequested", "JobCompleted"} <= schemas.keys()
    spec = (await api.client.get("/openapi.json")).json()
    run = spec["paths"]["/v1/trainer/run"]["post"]
    assert "202" in run["responses"]
    assert "TrainerRunRequest" in json.dumps(run["requestBody"])
    assert (await api.client.get("/docs")).status_code == 200
    assert (await api.client.get("/v1/models", headers=AUTH_A)).json()["items"] == []
