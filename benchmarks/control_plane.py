"""Control-plane benchmark: accepted runs/s and latency of POST /v1/trainer/run.

Starts ``tabstream api`` on real Kafka as a subprocess (projection inside), registers a tiny
dataset, then a separate load process (httpx async over loopback) submits runs for a bounded
time with bounded concurrency. The baseline is a hidden echo route on the same server
(``/v1/_bench/echo``, mounted only with TABSTREAM_BENCH_ECHO=1): auth + JSON parse, no publish.
Writes benchmarks/results/control_plane.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

RESULTS = Path(__file__).resolve().parent / "results"
TOKEN = "bench-token-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(bus: str, port: int, data_dir: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TABSTREAM_API_TOKENS": f"{TOKEN}=bench",
        "TABSTREAM_BENCH_ECHO": "1",
        "TABSTREAM_TOPIC_PREFIX": f"bench{uuid.uuid4().hex[:8]}",
        "TABSTREAM_LOG_LEVEL": "WARNING",
    }
    cmd = [
        sys.executable,
        "-m",
        "tabstream.cli",
        "api",
        "--bus",
        bus,
        "--data-dir",
        data_dir,
        "--port",
        str(port),
    ]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def _wait_ready(base: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=base) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError("api did not become ready")


async def _load(
    base: str, path: str, body: Any, seconds: float, concurrency: int
) -> dict[str, Any]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            r = await client.post(path, json=body, headers=headers)
            if r.status_code == 202:
                latencies.append(time.perf_counter() - t0)
            else:
                errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        t0 = time.monotonic()
        await asyncio.gather(*[worker(client) for _ in range(concurrency)])
        elapsed = time.monotonic() - t0
    ms = sorted(x * 1000 for x in latencies)
    return {
        "accepted": len(ms),
        "per_s": len(ms) / elapsed,
        "p50_ms": statistics.median(ms) if ms else None,
        "p99_ms": ms[int(len(ms) * 0.99) - 1] if ms else None,
        "errors": errors,
        "seconds": elapsed,
    }


async def _bench(bus: str, seconds: float, concurrency: int) -> dict[str, Any]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data_dir:
        server = _start_server(bus, port, data_dir)
        try:
            await _wait_ready(base)
            headers = {"Authorization": f"Bearer {TOKEN}"}
            csv = b"x,y\n" + b"".join(f"{i},{i * 0.5}\n".encode() for i in range(50))
            async with httpx.AsyncClient(base_url=base) as client:
                r = await client.post(
                    "/v1/datasets", files={"file": ("d.csv", csv)}, headers=headers
                )
                r.raise_for_status()
            body = {
                "dataset_id": r.json()["dataset_id"],
                "task": {"label_column": "y", "task_kind": "regression"},
                "model_types": ["xgboost"],
            }
            echo = await _load(base, "/v1/_bench/echo", body, seconds, concurrency)
            runs = await _load(base, "/v1/trainer/run", body, seconds, concurrency)
        finally:
            server.terminate()
            server.wait(30)
    return {
        "bus": bus,
        "concurrency": concurrency,
        "runs": runs,
        "echo": echo,
        "ratio_to_echo": runs["per_s"] / echo["per_s"] if echo["per_s"] else None,
        "cpus": os.cpu_count(),
    }


def _row(name: str, m: dict[str, Any]) -> str:
    return f"| {name} | {m['per_s']:.0f} | {m['p50_ms']:.1f} | {m['p99_ms']:.1f} | {m['errors']} |"


def _markdown(result: dict[str, Any]) -> str:
    runs, echo = result["runs"], result["echo"]
    return "\n".join(
        [
            "# Control plane: POST /v1/trainer/run",
            "",
            f"Bus `{result['bus']}`, {result['concurrency']} concurrent clients, "
            f"{result['cpus']} CPUs, load generator and server on the same machine.",
            "",
            "| route | accepted/s | p50 ms | p99 ms | errors |",
            "|---|---|---|---|---|",
            _row("/v1/trainer/run", runs),
            _row("echo baseline", echo),
            "",
            f"Ratio to the echo route: **{result['ratio_to_echo']:.2f}** "
            "(targets: ≥ 1,000 runs/s, p99 ≤ 50 ms, ratio ≥ 0.5).",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the JSON + Markdown report."""
    parser = argparse.ArgumentParser(prog="benchmarks.control_plane")
    parser.add_argument(
        "--bus", default=os.environ.get("TABSTREAM_BENCH_BUS", "kafka://127.0.0.1:9092")
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args(argv)
    result = asyncio.run(_bench(args.bus, args.seconds, args.concurrency))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "control_plane.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "control_plane.md").write_text(_markdown(result))
    print(_markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
