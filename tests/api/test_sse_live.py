"""SSE over a real server: uvicorn on a loopback port, httpx streaming, events published live.

The server runs in a thread with its own event loop; events are published to the very log
instance the app uses (the embedded log), on the server's loop, after the stream is open.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tabstream.adapters.bus.port import OutgoingRecord
from tabstream.bootstrap.api import build_api
from tabstream.producer_api.context import ApiContext
from tabstream.schemas import (
    Envelope,
    EventPayload,
    JobCompleted,
    JobStarted,
    LeaderboardEntry,
    TrialCompleted,
    encode,
    headers,
)
from tests.api.conftest import AUTH_A, AUTH_B, CSV, run_body, settings
from tests.api.workers import WORKER

SSE = {**AUTH_A, "Accept": "text/event-stream"}


class LiveServer:
    """The app under uvicorn in a background thread."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ctx(self) -> ApiContext:
        ctx: ApiContext = self.app.state.ctx
        return ctx

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)

    async def on_server(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` on the server's event loop (where the app's log lives)."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return await asyncio.wrap_future(future)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    """The API on the embedded bus, served by uvicorn on a free loopback port."""
    server = LiveServer(build_api(settings(tmp_path)))
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def _submit(client: httpx.AsyncClient) -> str:
    r = await client.post(
        "/v1/datasets", files={"file": ("t.csv", CSV, "text/csv")}, headers=AUTH_A
    )
    assert r.status_code == 201, r.text
    r = await client.post("/v1/trainer/run", json=run_body(r.json()["dataset_id"]), headers=AUTH_A)
    assert r.status_code == 202, r.text
    return str(r.json()["job_id"])


def _worker_events(job_id: str) -> list[EventPayload]:
    job = uuid.UUID(job_id)
    trial = TrialCompleted(
        job_id=job,
        row=0,
        family="xgboost",
        trial=0,
        state="complete",
        params={"max_depth": 3},
        fold_metrics=[{"rmse": 0.5}],
        metrics={"rmse": 0.5},
        score=0.5,
        fit_seconds=0.1,
        predict_seconds=0.01,
        device="cpu",
    )
    entry = LeaderboardEntry(row=0, family="xgboost", score=0.5, metrics={"rmse": 0.5}, params={})
    started = JobStarted(
        job_id=job,
        attempt=1,
        worker="w1",
        device="cpu",
        pool="cpu",
        model_types=["xgboost"],
        default_models_chosen=False,
        trials_total=1,
    )
    done = JobCompleted(job_id=job, leaderboard=[entry], duration_s=1.0)
    return [started, trial, done]


async def _publish(live: LiveServer, payload: EventPayload, seq: int) -> None:
    env = Envelope.wrap(payload, tenant="tenant-a", producer=WORKER, attempt=1, seq=seq)
    record = OutgoingRecord(live.ctx.topics.events, env.aggregate_id, encode(env), headers(env))
    await live.on_server(live.ctx.log.publish(record))


async def _frames(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, str]]:
    """SSE frames as {id, event, data}; comments (heartbeats) skipped."""
    frame: dict[str, str] = {}
    async for line in lines:
        if not line:
            if frame:
                yield frame
            frame = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            frame[name] = value


async def test_events_arrive_live_in_order_and_the_stream_ends(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=10) as client:
        job_id = await _submit(client)
        published = _worker_events(job_id)
        seen: list[dict[str, str]] = []
        async with asyncio.timeout(20):
            async with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=SSE) as r:
                assert r.status_code == 200
                assert r.headers["content-type"].startswith("text/event-stream")
                async for frame in _frames(r.aiter_lines()):
                    seen.append(frame)
                    if len(seen) <= len(published):  # each event only after the last arrived
                        await _publish(live, published[len(seen) - 1], len(seen) - 1)
        # the loop ended because the server closed the stream after JobCompleted
    assert [f["event"] for f in seen] == [
        "RunRequested",
        "JobStarted",
        "TrialCompleted",
        "JobCompleted",
    ]
    assert [f["id"] for f in seen] == ["1", "2", "3", "4"]
    assert all(json.loads(f["data"])["payload"]["job_id"] == job_id for f in seen)


async def test_last_event_id_resumes_after_that_event(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=10) as client:
        job_id = await _submit(client)
        first, trial, done = _worker_events(job_id)
        await _publish(live, first, 0)
        await _publish(live, trial, 1)
        resumed = {**SSE, "Last-Event-ID": "2"}
        seen: list[dict[str, str]] = []
        async with asyncio.timeout(20):
            async with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=resumed) as r:
                async for frame in _frames(r.aiter_lines()):
                    seen.append(frame)
                    if frame["event"] == "TrialCompleted":
                        await _publish(live, done, 2)
    assert [(f["id"], f["event"]) for f in seen] == [("3", "TrialCompleted"), ("4", "JobCompleted")]


async def test_finished_job_replays_and_closes_and_other_tenants_get_404(
    live: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=10) as client:
        job_id = await _submit(client)
        for seq, payload in enumerate(_worker_events(job_id)):
            await _publish(live, payload, seq)
        async with asyncio.timeout(20):
            async with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=SSE) as r:
                events = [f["event"] async for f in _frames(r.aiter_lines())]
        assert events == ["RunRequested", "JobStarted", "TrialCompleted", "JobCompleted"]
        foreign = {**AUTH_B, "Accept": "text/event-stream"}
        r2 = await client.get(f"/v1/jobs/{job_id}/events", headers=foreign)
        assert r2.status_code == 404
