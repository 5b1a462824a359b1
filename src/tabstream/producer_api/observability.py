"""Request ids in logs, run-submission counting and the /metrics route.

``RequestContext`` binds ``request_id`` (the caller's ``X-Request-ID`` when it is sane, else a
new one) into structlog's context for the whole request, echoes it in the response, and
reports the status of every ``POST /v1/trainer/run`` to ``app.state.on_run`` (if set).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable

import structlog
from fastapi import APIRouter, FastAPI, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

RUN_PATH = "/v1/trainer/run"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
Render = Callable[[], Awaitable[tuple[bytes, str]]]


class RequestContext:
    """ASGI middleware: request id binding and run outcome reporting."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        is_run = scope["method"] == "POST" and scope["path"] == RUN_PATH
        status = {"code": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                message["headers"] = headers
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                on_run = getattr(scope["app"].state, "on_run", None) if is_run else None
                if on_run is not None:
                    on_run(status["code"])


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text = str(value.decode("latin-1"))
            if _SANE_ID.match(text):
                return text
    return uuid.uuid4().hex


def metrics_router(render: Render) -> APIRouter:
    """GET /metrics (Prometheus text format; no authentication, like the health routes)."""
    router = APIRouter(tags=["health"])

    @router.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics of this process."""
        body, content_type = await render()
        return Response(body, media_type=content_type)

    return router


def install_metrics(
    app: FastAPI, render: Render, on_run: Callable[[int], None], route: bool
) -> None:
    """Count runs on ``app``; serve /metrics on it too when ``route``."""
    app.state.on_run = on_run
    if route:
        app.include_router(metrics_router(render))
