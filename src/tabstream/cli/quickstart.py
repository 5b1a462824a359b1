"""``tabstream quickstart``: the whole stack in-process on a temporary data dir, one real job
over REST, a live progress bar from the job's SSE stream, then the leaderboard."""

from __future__ import annotations

import asyncio
import json
import socket
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

SAMPLE = "credit_g.parquet"
RUN_BODY: dict[str, Any] = {
    "task": {"task_kind": "binclass", "label_column": "creditability"},
    "model_types": ["xgboost", "xrfm"],
    "n_trials": 3,
    "n_splits": 3,
}


def free_port() -> int:
    """An unused local TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sample_dataset() -> bytes:
    """The sample Parquet shipped in the package (credit-g, 1000 rows)."""
    return resources.files("tabstream.data").joinpath(SAMPLE).read_bytes()


async def quickstart(
    console: Console, data_dir: Path | None = None, slots: int = 1
) -> dict[str, Any]:
    """Run the quickstart; returns the finished job (as GET /v1/jobs/{id} shows it)."""
    from tabstream.bootstrap.api import ensure_api_token
    from tabstream.bootstrap.stack import build_stack
    from tabstream.settings import ApiSettings

    with tempfile.TemporaryDirectory(prefix="tabstream-quickstart-") as tmp:
        settings = ApiSettings(bus="embedded", data_dir=data_dir or Path(tmp), api_tokens=None)
        token, _ = ensure_api_token(settings)
        port = free_port()
        app = build_stack(settings, workers=slots)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        serving = asyncio.create_task(server.serve())
        try:
            while not server.started:
                if serving.done():
                    serving.result()
                await asyncio.sleep(0.05)
            url = f"http://127.0.0.1:{port}"
            console.print(f"[bold]tabstream[/] API, projection and worker up at {url}")
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
                return await _main_job(console, client)
        finally:
            server.should_exit = True
            await serving


async def _main_job(console: Console, client: httpx.AsyncClient) -> dict[str, Any]:
    files = {"file": (SAMPLE, sample_dataset(), "application/octet-stream")}
    response = await client.post("/v1/datasets", files=files, data={"name": "credit-g"})
    response.raise_for_status()
    dataset = response.json()
    console.print(
        f"registered dataset [cyan]{dataset['dataset_id']}[/] ({dataset.get('rows')} rows)"
    )
    response = await client.post(
        "/v1/trainer/run", json={**RUN_BODY, "dataset_id": dataset["dataset_id"]}
    )
    response.raise_for_status()
    job_id = response.json()["job_id"]
    console.print(f"submitted job [cyan]{job_id}[/]: xgboost + xrfm, 3 trials each, 3 folds")
    await _follow(console, client, job_id)
    job = (await client.get(f"/v1/jobs/{job_id}")).json()
    _report(console, job)
    return dict(job)


async def _follow(console: Console, client: httpx.AsyncClient, job_id: str) -> None:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("queued", total=None)
        headers = {"Accept": "text/event-stream"}
        async with client.stream(
            "GET", f"/v1/jobs/{job_id}/events", headers=headers, timeout=None
        ) as stream:
            async for line in stream.aiter_lines():
                if not line.startswith("data:"):
                    continue
                env = json.loads(line[5:])
                if _advance(progress, bar, env):
                    return


def _advance(progress: Progress, bar: Any, env: dict[str, Any]) -> bool:
    """Update the bar for one envelope; True on the terminal event."""
    kind, payload = env["type"], env["payload"]
    if kind == "JobStarted":
        progress.update(
            bar,
            description=f"training on {payload['device']}",
            total=payload["trials_total"] or None,
        )
    elif kind == "TrialCompleted":
        progress.update(bar, advance=1, description=f"{payload['family']} trial {payload['trial']}")
    elif kind == "JobInterrupted":
        progress.update(bar, description="attempt lost; retrying")
    elif kind in ("JobCompleted", "JobFailed", "JobCancelled"):
        progress.update(bar, description=kind)
        return True
    return False


def _report(console: Console, job: dict[str, Any]) -> None:
    if job.get("status") != "completed":
        console.print(f"[red]job {job.get('status')}[/]: {job.get('error')}")
        return
    table = Table(title="leaderboard")
    for name in ("row", "family", "score", "metrics", "model_id"):
        table.add_column(name)
    for entry in job.get("leaderboard") or []:
        metrics = ", ".join(f"{k}={v:.4f}" for k, v in (entry.get("metrics") or {}).items())
        score = entry.get("score")
        shown = "-" if score is None else f"{score:.4f}"
        row, family, model = (str(entry.get(k)) for k in ("row", "family", "model_id"))
        table.add_row(row, family, shown, metrics, model)
    console.print(table)
    console.print(f"best model: [bold green]{job.get('best_model_id')}[/]")
