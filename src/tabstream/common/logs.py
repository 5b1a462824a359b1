"""structlog configured once: JSON lines for services, readable console output in a terminal.

Bind context with ``structlog.contextvars.bound_contextvars(job_id=..., topic=..., partition=...,
offset=...)``; every log line inside carries it. Secrets are never passed to loggers; as a last
guard, ``redact_secrets`` masks known secret-bearing keys.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

SECRET_KEYS = frozenset(
    {
        "teacher_predict_headers",
        "authorization",
        "secret_key",
        "token",
        "refresh_token",
        "access_token",
        "encrypted_headers",
        "password",
    }
)
_configured = False


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is now (it may be swapped after configuration)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def redact_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: replace values of secret-bearing keys with '***'."""
    for key in SECRET_KEYS.intersection(event):
        event[key] = "***"
    return event


def configure_logging(
    fmt: Literal["auto", "json", "console"] = "auto", level: str = "INFO", *, force: bool = False
) -> None:
    """Configure structlog and stdlib logging once per process (``force`` reconfigures)."""
    global _configured
    if _configured and not force:
        return
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    numeric = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(
        level=numeric, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s"
    )
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _configured = True


def get_logger(name: str | None = None, **context: Any) -> Any:
    """A structlog logger, optionally bound to ``context``.

    Without context the lazy proxy is returned unbound, so a module-level logger created at
    import time still picks up the configuration made later by ``configure_logging``."""
    logger = structlog.get_logger(name)
    return logger.bind(**context) if context else logger
