"""Ops commands: run the service (``up``, ``api``, ``worker``), ``quickstart`` and ``version``."""

from __future__ import annotations

import os
from typing import Any, NoReturn

import typer

from tabstream import __version__


def version() -> None:
    """Print the tabstream version."""
    typer.echo(__version__)


def quickstart(
    slots: int = typer.Option(1, min=1, max=8, help="worker slots"),
) -> None:
    """Run the main job end to end on the embedded default: API, projection and a worker in
    this process on a temporary data dir; a sample dataset, two families, a progress bar."""
    import asyncio
    import time

    from rich.console import Console

    from tabstream.cli.quickstart import quickstart as run_quickstart
    from tabstream.common.logs import configure_logging

    configure_logging("console", "WARNING")
    console = Console(stderr=False)
    started = time.monotonic()
    job = asyncio.run(run_quickstart(console, slots=slots))
    console.print(f"done in {time.monotonic() - started:.0f} s")
    if job.get("status") != "completed":
        raise typer.Exit(code=1)


def up(
    workers: int = typer.Option(1, min=1, max=64, help="worker slots in this process"),
    host: str | None = typer.Option(None, help="bind address (TABSTREAM_HOST)"),
    port: int | None = typer.Option(None, help="port (TABSTREAM_PORT)"),
    data_dir: str | None = typer.Option(None, help="data directory (TABSTREAM_DATA_DIR)"),
) -> None:
    """API + projection + N worker slots in one process on the embedded log."""
    import sys

    import uvicorn

    from tabstream.bootstrap.api import ensure_api_token, tune_gc
    from tabstream.bootstrap.stack import build_stack
    from tabstream.common.logs import configure_logging
    from tabstream.settings import ApiSettings

    overrides: dict[str, Any] = {"data_dir": data_dir, "host": host, "port": port}
    settings = ApiSettings(bus="embedded", **{k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_format, settings.log_level)
    token, created = ensure_api_token(settings)
    if token and created:
        print(
            f"API token (shown once; kept in {settings.data_dir / 'api.token'}, mode 0600):",
            token,
            file=sys.stderr,
        )
    elif token:
        print(f"API token: see {settings.data_dir / 'api.token'}", file=sys.stderr)
    app = build_stack(settings, workers=workers)
    tune_gc()
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")


def api(
    bus: str | None = typer.Option(None, help="embedded or kafka://host:port (TABSTREAM_BUS)"),
    data_dir: str | None = typer.Option(None, help="data directory (TABSTREAM_DATA_DIR)"),
    host: str | None = typer.Option(None, help="bind address (TABSTREAM_HOST)"),
    port: int | None = typer.Option(None, help="port (TABSTREAM_PORT)"),
) -> None:
    """Run the REST API (with the projection inside) under uvicorn."""
    import uvicorn

    from tabstream.bootstrap.api import build_api, tune_gc
    from tabstream.common.logs import configure_logging
    from tabstream.settings import ApiSettings

    overrides: dict[str, Any] = {"bus": bus, "data_dir": data_dir, "host": host, "port": port}
    settings = ApiSettings(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_format, settings.log_level)
    app = build_api(settings)
    tune_gc()
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")


# -- worker, up, quickstart -------------------------------------------------------------------


def worker(
    pool: str | None = typer.Option(None, help="worker pool: cpu, gpu, ... (TABSTREAM_POOL)"),
    slots: int | None = typer.Option(None, min=1, max=64, help="jobs at once (TABSTREAM_SLOTS)"),
    gpu: int | None = typer.Option(None, help="pin to this GPU (CUDA_VISIBLE_DEVICES)"),
    instance_id: str | None = typer.Option(
        None, help="static group membership, slot ids derive (TABSTREAM_INSTANCE_ID)"
    ),
    bus: str | None = typer.Option(None, help="embedded or kafka://host:port (TABSTREAM_BUS)"),
    data_dir: str | None = typer.Option(None, help="data directory (TABSTREAM_DATA_DIR)"),
    prefix: str | None = typer.Option(None, help="topic name prefix (TABSTREAM_TOPIC_PREFIX)"),
    session_timeout_ms: int | None = typer.Option(None, help="TABSTREAM_SESSION_TIMEOUT_MS"),
    max_poll_interval_ms: int | None = typer.Option(None, help="TABSTREAM_MAX_POLL_INTERVAL_MS"),
    metrics_port: int | None = typer.Option(
        None, help="serve Prometheus /metrics on this port (TABSTREAM_METRICS_PORT)"
    ),
) -> None:
    """Join the pool's consumer group and run jobs (one per slot) in child processes.

    SIGTERM/SIGINT stops it within TABSTREAM_SHUTDOWN_S (exit 0); when the shutdown does not
    finish in that time (a dead broker), or on a second signal, it gives up and exits 1."""
    import asyncio

    from tabstream.bootstrap.worker import build_worker, serve_worker_metrics
    from tabstream.common.logs import configure_logging
    from tabstream.settings import WorkerSettings

    given: dict[str, Any] = {
        "pool": pool,
        "slots": slots,
        "gpu": gpu,
        "instance_id": instance_id,
        "bus": bus,
        "data_dir": data_dir,
        "topic_prefix": prefix,
        "session_timeout_ms": session_timeout_ms,
        "max_poll_interval_ms": max_poll_interval_ms,
        "metrics_port": metrics_port,
    }
    settings = WorkerSettings(**{k: v for k, v in given.items() if v is not None})
    configure_logging(settings.log_format, settings.log_level)
    serve_worker_metrics(settings)

    async def serve() -> None:
        if not await build_worker(settings).run_forever(close_log=True):
            _exit_now(1)

    asyncio.run(serve())


def _exit_now(code: int) -> NoReturn:
    """Exit at once: after a shutdown was given up, ``asyncio.run`` would wait for the
    cancelled tasks and executor threads still stuck on the broker."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def register(app: typer.Typer) -> None:
    """Add the ops commands to the main ``tabstream`` app."""
    for command in (version, quickstart, up, api, worker):
        app.command()(command)
