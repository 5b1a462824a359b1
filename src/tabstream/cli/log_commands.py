"""Log commands: run or rebuild the projection, replay the log for audit."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import typer

projection_app = typer.Typer(
    help="Run the projection alone (default), or rebuild it from offset 0 (`rebuild`).",
    invoke_without_command=True,
)
_BUS = typer.Option(None, help="embedded or kafka://host:port (TABSTREAM_BUS)")
_DATA_DIR = typer.Option(None, help="data directory (TABSTREAM_DATA_DIR)")
_POOLS = typer.Option(None, help="pools whose commands to fold (TABSTREAM_POOLS, default cpu)")
_PREFIX = typer.Option(None, help="topic name prefix (TABSTREAM_TOPIC_PREFIX)")


def _parts(bus: str | None, data_dir: str | None, pools: str | None, prefix: str | None) -> Any:
    """The projection's parts from the settings, the options given overriding them."""
    from tabstream.bootstrap.projection import build_projection_parts
    from tabstream.common.logs import configure_logging
    from tabstream.settings import ProjectionSettings

    given: dict[str, Any] = {
        "bus": bus,
        "data_dir": data_dir,
        "pools": pools,
        "topic_prefix": prefix,
    }
    settings = ProjectionSettings(**{k: v for k, v in given.items() if v is not None})
    configure_logging(settings.log_format, settings.log_level)
    return build_projection_parts(settings)


@projection_app.callback()
def projection(
    ctx: typer.Context,
    bus: str | None = _BUS,
    data_dir: str | None = _DATA_DIR,
    pools: str | None = _POOLS,
    prefix: str | None = _PREFIX,
) -> None:
    """Fold the log into <data_dir>/projection-<prefix>.sqlite until interrupted."""
    if ctx.invoked_subcommand is not None:
        return
    import asyncio

    from tabstream.bootstrap.projection import serve_projection

    parts = _parts(bus, data_dir, pools, prefix)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_projection(parts))


@projection_app.command("rebuild")
def projection_rebuild(
    verify: bool = typer.Option(False, help="compare with the live store (exit 1 if different)"),
    bus: str | None = _BUS,
    data_dir: str | None = _DATA_DIR,
    pools: str | None = _POOLS,
    prefix: str | None = _PREFIX,
) -> None:
    """Rebuild the projection from offset 0 into a fresh temporary store and print its digest."""
    import asyncio

    from tabstream.bootstrap.projection import rebuild_digest

    parts = _parts(bus, data_dir, pools, prefix)
    digest, live_digest = asyncio.run(rebuild_digest(parts, verify=verify))
    typer.echo(f"rebuilt digest: {digest}")
    if verify:
        typer.echo(f"live digest:    {live_digest}")
        same = digest == live_digest
        typer.echo("identical" if same else "DIFFERENT")
        if not same:
            raise typer.Exit(code=1)


def replay(
    job: str | None = typer.Option(None, help="only this job's records"),
    from_offset: int = typer.Option(0, min=0, help="start offset in every partition"),
    as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table"),
    bus: str | None = _BUS,
    data_dir: str | None = _DATA_DIR,
    pools: str | None = _POOLS,
    prefix: str | None = _PREFIX,
) -> None:
    """Print the history in the log (decoded, upcast, verified); undecodable records are
    reported, never fatal (exit 1 when there are any)."""
    import asyncio

    from tabstream.bootstrap.projection import replay_items

    items = asyncio.run(replay_items(_parts(bus, data_dir, pools, prefix), job, from_offset))
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


def register(app: typer.Typer) -> None:
    """Add ``projection`` (and ``projection rebuild``) and ``replay`` to the main app."""
    app.add_typer(projection_app, name="projection")
    app.command()(replay)
