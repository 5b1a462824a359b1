"""Predict latency: ``POST /v1/models/{id}/predict`` on a cached xgboost model.

``python -m benchmarks.predict [--repeats N]``: trains one xgboost model (credit_g, defaults),
registers it in an API on the embedded bus (temp data dir), warms the cache with one request,
then times requests of 1 row and of 1,000 rows through the full ASGI app (auth, validation,
thread-pool predict, JSON) with an in-process httpx transport (no network), and the same
predictions in-process (``predict_samples``) for reference. Writes
``benchmarks/results/predict.json`` and ``predict.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from tabstream.adapters.models.pipeline_server import PipelineModelServer
from tabstream.bootstrap.api import build_api
from tabstream.pipeline.predict import predict_samples
from tabstream.settings import ApiSettings

RESULTS = Path(__file__).resolve().parent / "results"
TOKEN = "bench-token-aaaaaaaaaaaaaaaaaaaaaaaa"


def parse(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.predict", description=__doc__)
    p.add_argument("--repeats", type=int, default=200)
    return p.parse_args(argv)


def _pct(samples: list[float]) -> dict[str, float]:
    ms = np.asarray(samples) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "n": len(samples)}  # fmt: skip


async def _bench(data_dir: Path, repeats: int) -> dict[str, Any]:
    from tests.api.conftest import Api, running
    from tests.api.test_models_support import body, register, train

    settings = ApiSettings(data_dir=data_dir, api_tokens=f"{TOKEN}=bench",
                           secret_key="b" * 20 + "-random-bench-secret-value-123456")  # fmt: skip
    auth = {"Authorization": f"Bearer {TOKEN}"}
    out: dict[str, Any] = {}
    async for api in running(build_api(settings)):
        assert isinstance(api, Api)
        events, data = train(api, "credit_g", rows=1000)
        model_id = await register(api, events, tenant="bench")
        url = f"/v1/models/{model_id}/predict"
        for rows in (1, 1000):
            req = body(data, "creditability", rows)
            r = await api.client.post(url, json=req, headers=auth)
            assert r.status_code == 200, r.text
            out[f"api_{rows}"] = _pct(await _time_api(api.client, url, req, auth, repeats))
            server = api.ctx.models
            assert isinstance(server, PipelineModelServer)
            model = server.cache.get(model_id, _sha(events))
            out[f"inproc_{rows}"] = _pct(_time_inproc(model, req, repeats))
    return out


def _sha(events: list[Any]) -> str:
    return str(next(e.sha256 for e in events if e.type == "ModelRegistered"))


async def _time_api(
    client: httpx.AsyncClient, url: str, req: Any, auth: Any, repeats: int
) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        r = await client.post(url, json=req, headers=auth)
        times.append(time.perf_counter() - start)
        assert r.status_code == 200
    return times


def _time_inproc(model: Any, req: Any, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict_samples(model, req["samples"], req["feature_names"])
        times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> None:
    """Run and write the report."""
    args = parse(argv or [])
    os.environ.setdefault("TABSTREAM_FAMILY_THREADS", "4")
    with tempfile.TemporaryDirectory() as tmp:
        timings = asyncio.run(_bench(Path(tmp), args.repeats))
    report = {"repeats": args.repeats, "machine": platform.platform(),
              "cpus": os.cpu_count(), "timings": timings}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "predict.json").write_text(json.dumps(report, indent=2))
    (RESULTS / "predict.md").write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict[str, Any]) -> str:
    """The Markdown table of a report."""
    t = report["timings"]
    lines = [
        "# Predict latency (cached xgboost model, credit_g)",
        "",
        f"{report['repeats']} requests each; API = full ASGI app over an in-process httpx "
        f"transport (auth, validation, thread-pool predict, JSON); {report['cpus']} CPUs.",
        "",
        "| rows | API p50 ms | API p99 ms | in-process p50 ms | in-process p99 ms |",
        "|---|---|---|---|---|",
    ]
    for rows in (1, 1000):
        a, i = t[f"api_{rows}"], t[f"inproc_{rows}"]
        lines.append(
            f"| {rows} | {a['p50_ms']:.2f} | {a['p99_ms']:.2f} | {i['p50_ms']:.2f} "
            f"| {i['p99_ms']:.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
