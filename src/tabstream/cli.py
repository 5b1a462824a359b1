"""The `tabstream` command line (typer)."""

from __future__ import annotations

import typer

from tabstream import __version__

app = typer.Typer(
    name="tabstream",
    help="Event-driven tabular AutoML: REST in, an event log (embedded SQLite or Kafka), workers.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def version() -> None:
    """Print the tabstream version."""
    typer.echo(__version__)


@app.command()
def quickstart() -> None:
    """Run the main job end to end on the embedded default (needs the worker: not built yet)."""
    typer.echo("tabstream quickstart: not built yet (it lands with the worker issue)", err=True)
    raise typer.Exit(code=2)


@app.command()
def api(
    bus: str | None = typer.Option(None, help="embedded or kafka://host:port (TABSTREAM_BUS)"),
    data_dir: str | None = typer.Option(None, help="data directory (TABSTREAM_DATA_DIR)"),
    host: str | None = typer.Option(None, help="bind address (TABSTREAM_HOST)"),
    port: int | None = typer.Option(None, help="port (TABSTREAM_PORT)"),
) -> None:
    """Run the REST API (with the projection inside) under uvicorn."""
    import uvicorn

    from tabstream.bootstrap import build_api
    from tabstream.logs import configure_logging
    from tabstream.settings import ApiSettings

    overrides = {"bus": bus, "data_dir": data_dir, "host": host, "port": port}
    settings = ApiSettings(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_format, settings.log_level)
    uvicorn.run(build_api(settings), host=settings.host, port=settings.port, log_level="warning")


def main() -> None:
    """Console-script entry point."""
    app()
