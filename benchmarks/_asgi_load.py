"""The API's own cost per request: the ASGI app called directly, without an HTTP client or server.

Builds the app in this process on the given bus (projection included), registers a dataset,
then sends a fixed number of requests straight into the ASGI callable with a fixed number in
flight, and measures this process's CPU time: what the app pays per accepted request, free of
httpx's client cost (which on loopback is several times the server's).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tabstream.bootstrap.api import build_api
from tabstream.settings import ApiSettings

TOKEN = "asgi-bench-token-0123456789abcdefgh"
CSV = b"x,y\n" + b"".join(f"{i},{i * 0.5}\n".encode() for i in range(50))


def _scope(path: str, length: int) -> dict[str, Any]:
    headers = [
        (b"host", b"api"),
        (b"authorization", f"Bearer {TOKEN}".encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(length).encode()),
    ]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }


async def _call(app: Any, path: str, body: bytes) -> int:
    """One request into the ASGI app; returns the status."""
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = 0

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # no disconnect while the request runs
        return {}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    await app(_scope(path, len(body)), receive, send)
    return status


async def _measure(app: Any, path: str, body: bytes, total: int, inflight: int) -> dict[str, Any]:
    statuses: list[int] = []

    async def worker(n: int) -> None:
        for _ in range(n):
            statuses.append(await _call(app, path, body))

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*[worker(total // inflight) for _ in range(inflight)])
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    n = len(statuses)
    return {
        "requests": n,
        "ok": sum(s < 300 for s in statuses),
        "cpu_ms_per_request": 1000 * cpu / n,
        "per_cpu_second": n / cpu,
        "wall_per_s": n / wall,
    }


async def asgi_costs(bus: str, total: int = 2048, inflight: int = 32) -> dict[str, Any]:
    """CPU per request of the echo route and of POST /v1/trainer/run, in-process."""
    with tempfile.TemporaryDirectory() as data_dir:
        settings = ApiSettings(
            data_dir=Path(data_dir),
            api_tokens=f"{TOKEN}=bench",
            secret_key=uuid.uuid4().hex + uuid.uuid4().hex,
            bus=bus,
            bench_echo=True,
            topic_prefix=f"asgi{uuid.uuid4().hex[:8]}",
        )
        app = build_api(settings)
        async with app.router.lifespan_context(app):
            body = await _prepare(app)
            await _measure(app, "/v1/trainer/run", body, 256, inflight)  # warm-up
            echo = await _measure(app, "/v1/_bench/echo", body, total, inflight)
            runs = await _measure(app, "/v1/trainer/run", body, total, inflight)
    return {"bus": bus, "inflight": inflight, "echo": echo, "runs": runs}


async def _prepare(app: Any) -> bytes:
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        for _ in range(300):
            if (await client.get("/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        r = await client.post("/v1/datasets", files={"file": ("d.csv", CSV)}, headers=headers)
        r.raise_for_status()
    task = {"label_column": "y", "task_kind": "regression"}
    spec = {"dataset_id": r.json()["dataset_id"], "task": task, "model_types": ["xgboost"]}
    return json.dumps(spec).encode()
