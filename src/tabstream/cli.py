"""The `tabstream` command line (typer)."""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any, NoReturn

import typer

from tabstream import __version__, cli_client

app = typer.Typer(
    name="tabstream",
    help="Event-driven tabular AutoML: REST in, an event log (embedded SQLite or Kafka), workers.",
    no_args_is_help=True,
    add_completion=False,
)
cli_client.register(app)


@app.command()
def version() -> None:
    """Print the tabstream version."""
    typer.echo(__version__)


@app.command()
def quickstart(
    slots: int = typer.Option(1, min=1, max=8, help="worker slots"),
) -> None:
    """Run the main job end to end on the embedded default: API, projection and a worker in
    this process on a temporary data dir; a sample dataset, two families, a progress bar."""
    import asyncio
    import time

    from rich.console import Console

    from tabstream.logs import configure_logging
    from tabstream.quickstart import quickstart as run_quickstart

    configure_logging("console", "WARNING")
    console = Console(stderr=False)
    started = time.monotonic()
    job = asyncio.run(run_quickstart(console, slots=slots))
    console.print(f"done in {time.monotonic() - started:.0f} s")
    if job.get("status") != "completed":
        raise typer.Exit(code=1)


@app.command()
def up(
    workers: int = typer.Option(1, min=1, max=64, help="worker slots in this process"),
    host: str | None = typer.Option(None, help="bind address (TABSTREAM_HOST)"),
    port: int | None = typer.Option(None, help="port (TABSTREAM_PORT)"),
    data_dir: str | None = typer.Option(None, help="data directory (TABSTREAM_DATA_DIR)"),
) -> None:
    """API + projection + N worker slots in one process on the embedded log."""
    import sys

    import uvicorn

    from tabstream.bootstrap import build_stack, ensure_api_token, tune_gc
    from tabstream.logs import configure_logging
    from tabstream.settings import ApiSettings

    overrides: dict[str, Any] = {"data_dir": data_dir, "host": host, "port": port}
    settings = ApiSettings(bus="embedded", **{k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_format, settings.log_level)
    token, created = ensure_api_token(settings)
    if token and created:
        print(f"API token (shown once; kept in {settings.data_dir / 'api.token'}, mode 0600):",
              token, file=sys.stderr)  # fmt: skip
    elif token:
        print(f"API token: see {settings.data_dir / 'api.token'}", file=sys.stderr)
    app = build_stack(settings, workers=workers)
    tune_gc()
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")


@app.command()
def api(
    bus: str | None = typer.Option(None, help="embedded or kafka://host:port (TABSTREAM_BUS)"),
    data_dir: str | None = typer.Option(None, help="data directory (TABSTREAM_DATA_DIR)"),
    host: str | None = typer.Option(None, help="bind address (TABSTREAM_HOST)"),
    port: int | None = typer.Option(None, help="port (TABSTREAM_PORT)"),
) -> None:
    """Run the REST API (with the projection inside) under uvicorn."""
    import uvicorn

    from tabstream.bootstrap import build_api, tune_gc
    from tabstream.logs import configure_logging
    from tabstream.settings import ApiSettings

    overrides: dict[str, Any] = {"bus": bus, "data_dir": data_dir, "host": host, "port": port}
    settings = ApiSettings(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_format, settings.log_level)
    app = build_api(settings)
    tune_gc()
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")


# -- worker, up, quickstart -------------------------------------------------------------------


@app.command()
def worker(
    pool: str = typer.Option("cpu", envvar="TABSTREAM_POOL", help="worker pool (cpu, gpu, ...)"),
    slots: int = typer.Option(1, min=1, max=64, envvar="TABSTREAM_SLOTS", help="jobs at once"),
    gpu: int | None = typer.Option(None, help="pin to this GPU (CUDA_VISIBLE_DEVICES)"),
    instance_id: str | None = typer.Option(
        None, envvar="TABSTREAM_INSTANCE_ID", help="static group membership (slot ids derive)"
    ),
    bus: str | None = typer.Option(None, help="embedded or kafka://host:port (TABSTREAM_BUS)"),
    data_dir: str | None = typer.Option(None, help="data directory (TABSTREAM_DATA_DIR)"),
    prefix: str = typer.Option("tabstream", envvar="TABSTREAM_TOPIC_PREFIX", help="topics"),
    session_timeout_ms: int = typer.Option(10_000, envvar="TABSTREAM_SESSION_TIMEOUT_MS"),
    max_poll_interval_ms: int = typer.Option(300_000, envvar="TABSTREAM_MAX_POLL_INTERVAL_MS"),
    metrics_port: int | None = typer.Option(
        None, envvar="TABSTREAM_METRICS_PORT", help="serve Prometheus /metrics on this port"
    ),
) -> None:
    """Join the pool's consumer group and run jobs (one per slot) in child processes.

    SIGTERM/SIGINT stops it within TABSTREAM_SHUTDOWN_S (exit 0); when the shutdown does not
    finish in that time (a dead broker), or on a second signal, it gives up and exits 1."""
    import asyncio

    from tabstream.bootstrap import build_worker
    from tabstream.logs import configure_logging
    from tabstream.settings import WorkerSettings

    overrides: dict[str, Any] = {"pool": pool, "slots": slots, "gpu": gpu}
    overrides.update({k: v for k, v in {"bus": bus, "data_dir": data_dir}.items() if v})
    settings = WorkerSettings(**overrides)
    configure_logging(settings.log_format, settings.log_level)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        from tabstream.metrics import worker_registry

        name = instance_id or settings.instance_id or f"{pool}-{os.getpid()}"
        registry = worker_registry(name, settings.gpu)
        start_http_server(metrics_port, addr=settings.metrics_host, registry=registry)

    async def serve() -> None:
        built = build_worker(
            settings,
            instance_id=instance_id,
            topic_prefix=prefix,
            session_timeout_ms=session_timeout_ms,
            max_poll_interval_ms=max_poll_interval_ms,
        )
        if not await built.run_forever(close_log=True):
            _exit_now(1)

    asyncio.run(serve())


def _exit_now(code: int) -> NoReturn:
    """Exit at once: after a shutdown was given up, ``asyncio.run`` would wait for the
    cancelled tasks and executor threads still stuck on the broker."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# -- projection and replay -------------------------------------------------------------------

projection_app = typer.Typer(
    help="Run the projection alone (default), or rebuild it from offset 0 (`rebuild`).",
    invoke_without_command=True,
)
app.add_typer(projection_app, name="projection")
_BUS = typer.Option(None, help="embedded or kafka://host:port (TABSTREAM_BUS)")
_DATA_DIR = typer.Option(None, help="data directory (TABSTREAM_DATA_DIR)")
_POOLS = typer.Option("cpu", envvar="TABSTREAM_POOLS", help="pools whose commands to fold")
_PREFIX = typer.Option("tabstream", envvar="TABSTREAM_TOPIC_PREFIX", help="topic name prefix")


def _projection_parts(bus: str | None, data_dir: str | None, pools: str, prefix: str) -> Any:
    """(settings, event log, Topics, pools, live store path) for the projection commands."""
    from tabstream.bootstrap import build_event_log, parse_pools
    from tabstream.logs import configure_logging
    from tabstream.schemas.topics import Topics
    from tabstream.settings import ProjectionSettings

    overrides: dict[str, Any] = {"bus": bus, "data_dir": data_dir}
    settings = ProjectionSettings(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_format, settings.log_level)
    log = build_event_log(settings, client_id="tabstream-projection")
    store_path = settings.data_dir / f"projection-{prefix}.sqlite"
    return settings, log, Topics(prefix), list(parse_pools(pools)), store_path


@projection_app.callback()
def projection(
    ctx: typer.Context,
    bus: str | None = _BUS,
    data_dir: str | None = _DATA_DIR,
    pools: str = _POOLS,
    prefix: str = _PREFIX,
) -> None:
    """Fold the log into <data_dir>/projection-<prefix>.sqlite until interrupted."""
    if ctx.invoked_subcommand is not None:
        return
    import asyncio

    from tabstream.projection import ProjectionService, ProjectionStore

    _, log, topics, pool_list, path = _projection_parts(bus, data_dir, pools, prefix)

    async def serve() -> None:
        store = ProjectionStore(path)
        await log.start()
        try:
            await ProjectionService(log, store, topics, pool_list).run()
        finally:
            await log.close()
            store.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


@projection_app.command("rebuild")
def projection_rebuild(
    verify: bool = typer.Option(False, help="compare with the live store (exit 1 if different)"),
    bus: str | None = _BUS,
    data_dir: str | None = _DATA_DIR,
    pools: str = _POOLS,
    prefix: str = _PREFIX,
) -> None:
    """Rebuild the projection from offset 0 into a fresh temporary store and print its digest."""
    import asyncio
    import tempfile
    from pathlib import Path

    from tabstream.projection import ProjectionStore, rebuild

    _, log, topics, pool_list, path = _projection_parts(bus, data_dir, pools, prefix)
    live_offsets, live_digest = None, None
    if verify:
        live = ProjectionStore(path)
        live_offsets, live_digest = live.snapshot()
        live.close()

    async def run(fresh: Path) -> str:
        await log.start()
        try:
            names = topics.projection_topics(pool_list)
            return await rebuild(log, fresh, names, until=live_offsets)
        finally:
            await log.close()

    with tempfile.TemporaryDirectory() as tmp:
        digest = asyncio.run(run(Path(tmp) / "rebuild.sqlite"))
    typer.echo(f"rebuilt digest: {digest}")
    if verify:
        typer.echo(f"live digest:    {live_digest}")
        same = digest == live_digest
        typer.echo("identical" if same else "DIFFERENT")
        if not same:
            raise typer.Exit(code=1)


@app.command()
def replay(
    job: str | None = typer.Option(None, help="only this job's records"),
    from_offset: int = typer.Option(0, min=0, help="start offset in every partition"),
    as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table"),
    bus: str | None = _BUS,
    data_dir: str | None = _DATA_DIR,
    pools: str = _POOLS,
    prefix: str = _PREFIX,
) -> None:
    """Print the history in the log (decoded, upcast, verified); undecodable records are
    reported, never fatal (exit 1 when there are any)."""
    import asyncio

    from tabstream.projection import replay as replay_log

    _, log, topics, pool_list, _ = _projection_parts(bus, data_dir, pools, prefix)

    async def collect() -> list[Any]:
        await log.start()
        try:
            names = topics.projection_topics(pool_list)
            return [i async for i in replay_log(log, names, job=job, from_offset=from_offset)]
        finally:
            await log.close()

    items = asyncio.run(collect())
    if job is not None:
        items.sort(key=lambda i: i.envelope.occurred_at.isoformat() if i.envelope else "")
    for item in items:
        typer.echo(_replay_json(item) if as_json else _replay_line(item))
    if any(i.error for i in items):
        raise typer.Exit(code=1)


def _replay_json(item: Any) -> str:
    r = item.record
    out: dict[str, Any] = {"topic": r.topic, "partition": r.partition, "offset": r.offset}
    if item.envelope is not None:
        out["envelope"] = item.envelope.model_dump(mode="json")
    else:
        out["error"] = item.error
    return json.dumps(out, sort_keys=True)


def _replay_line(item: Any) -> str:
    r, env = item.record, item.envelope
    where = f"{r.topic}[{r.partition}]@{r.offset}"
    if env is None:
        return f"{where:<40} UNDECODABLE {item.error}"
    when = env.occurred_at.strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"{where:<40} {when} {env.type:<17} {env.aggregate_id} "
        f"attempt={env.attempt} seq={env.seq} tenant={env.tenant}"
    )


def main() -> None:
    """Console-script entry point: a bad setting is one line naming it, exit 2."""
    from pydantic import ValidationError

    from tabstream.settings import ConfigError, config_error

    try:
        app()
    except ValidationError as exc:
        if not exc.title.endswith("Settings"):
            raise
        _config_exit(config_error(exc))
    except ConfigError as exc:
        _config_exit(exc)


def _config_exit(exc: Exception) -> None:
    import sys

    print(f"tabstream: configuration error: {exc}", file=sys.stderr)
    raise SystemExit(2)


if __name__ == "__main__":
    main()
