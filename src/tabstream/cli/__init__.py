"""The ``tabstream`` command line (typer): ops commands (``ops``), log commands
(``log_commands``), client commands (``client_commands``, ``watch``) and ``quickstart``.

Commands build what they run through ``tabstream.bootstrap`` only.
"""

from __future__ import annotations

import typer

from tabstream.cli import client_commands, log_commands, ops

app = typer.Typer(
    name="tabstream",
    help="Event-driven tabular AutoML: REST in, an event log (embedded SQLite or Kafka), workers.",
    no_args_is_help=True,
    add_completion=False,
)
for _module in (ops, log_commands, client_commands):
    _module.register(app)


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
