"""Composition root of ``tabstream up``: the API (with its projection) and worker slots in one
process on one event log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from tabstream.bootstrap.api import build_api
from tabstream.bootstrap.common import build_event_log
from tabstream.bootstrap.worker import build_worker
from tabstream.common.logs import get_logger
from tabstream.settings import (
    ApiSettings,
    WorkerSettings,
)

_log = get_logger(__name__)


def build_stack(settings: ApiSettings, workers: int = 1, **worker_overrides: Any) -> FastAPI:
    """``tabstream up``: the API (with its projection) and ``workers`` worker slots in one
    process, sharing one event log instance; the slots start after the API's log is open and
    stop before it closes."""
    log = build_event_log(settings, client_id="tabstream-up")
    app = build_api(settings, log=log)
    worker_settings = WorkerSettings(
        bus=settings.bus,
        data_dir=settings.data_dir,
        artifacts_uri=settings.artifacts_uri,
        slots=workers,
        secret_key=settings.secret_key,
    )
    worker = build_worker(worker_settings, log, instance_id=None, **worker_overrides)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[None]:
        async with inner(a):
            await worker.start()
            try:
                yield
            finally:
                await worker.stop()

    app.router.lifespan_context = lifespan
    app.state.worker = worker
    return app
