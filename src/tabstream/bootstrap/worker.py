"""Composition root of a worker process (``tabstream worker``): settings -> event log ->
the worker and its slots."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

from tabstream.adapters.bus.port import EventLog
from tabstream.adapters.secrets import HeaderCipher
from tabstream.bootstrap.common import build_event_log
from tabstream.common.logs import get_logger
from tabstream.common.prometheus import worker_registry
from tabstream.consumer import Worker, WorkerConfig
from tabstream.settings import (
    CommonSettings,
    WorkerSettings,
    load_or_create_secret,
)

_log = get_logger(__name__)


def worker_decrypt(settings: CommonSettings) -> Callable[[str], dict[str, str]] | None:
    """The teacher-header decryptor: TABSTREAM_SECRET_KEY or ``<data_dir>/secret.key`` (the
    API's); None when neither exists (jobs with encrypted headers then fail clearly)."""
    key = getattr(settings, "secret_key", None)
    if key is not None:
        return HeaderCipher(key.get_secret_value()).decrypt
    if (settings.data_dir / "secret.key").exists():
        return HeaderCipher(load_or_create_secret(settings.data_dir)).decrypt
    return None


def build_worker(
    settings: WorkerSettings,
    log: EventLog | None = None,
    *,
    instance_id: str | None = None,
    topic_prefix: str | None = None,
    **overrides: Any,
) -> Worker:
    """A worker on ``log`` (a new one from the settings when None); ``overrides`` go to
    ``WorkerConfig`` (e.g. ``child_argv``, ``session_timeout_ms``). An explicit
    ``instance_id`` makes the group membership static."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log = log or build_event_log(settings, client_id="tabstream-worker")
    instance = instance_id or settings.instance_id
    values: dict[str, Any] = {
        "pool": settings.pool,
        "slots": settings.slots,
        "gpu": settings.gpu,
        "instance": instance or f"{socket.gethostname()}-{os.getpid()}",
        "static_membership": instance is not None,
        "prefix": topic_prefix or settings.topic_prefix,
        "artifacts_uri": settings.artifact_root,
        "max_attempts": settings.max_attempts,
        "job_timeout_s": settings.job_timeout_s,
        "shutdown_s": settings.shutdown_s,
        "session_timeout_ms": settings.session_timeout_ms,
        "max_poll_interval_ms": settings.max_poll_interval_ms,
    }
    values.update(overrides)
    return Worker(log, WorkerConfig(**values), decrypt=worker_decrypt(settings))


def serve_worker_metrics(settings: WorkerSettings) -> None:
    """Serve the worker's Prometheus /metrics (GPU memory) on ``TABSTREAM_METRICS_PORT``, in a
    background thread, when it is set."""
    if settings.metrics_port is None:
        return
    from prometheus_client import start_http_server

    name = settings.instance_id or f"{settings.pool}-{os.getpid()}"
    registry = worker_registry(name, settings.gpu)
    start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry)
