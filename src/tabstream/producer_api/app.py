"""The FastAPI app factory."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tabstream.adapters.bus.port import BusUnavailable
from tabstream.producer_api.auth import AuthError
from tabstream.producer_api.bodies import openapi_components
from tabstream.producer_api.body_limit import BodyLimit
from tabstream.producer_api.context import ApiContext
from tabstream.producer_api.errors import validation_error
from tabstream.producer_api.observability import RequestContext
from tabstream.producer_api.routers import (
    auth,
    bench,
    datasets,
    files,
    health,
    jobs,
    models,
    results,
    runs,
    schemas,
    uploads,
)

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
DESCRIPTION = (
    "Submit TrainerRun jobs, register datasets and follow jobs. Every route except /healthz, "
    "/readyz, /metrics and this document (/openapi.json, /docs, /redoc) needs "
    "`Authorization: Bearer <token>` (a static API token or an access JWT from "
    "POST /v1/auth/token). Another tenant's resources are 404. Request bodies other than "
    "multipart uploads are capped (TABSTREAM_MAX_JSON_BODY_BYTES, default 1 MiB: 413)."
)


def create_app(ctx: ApiContext, lifespan: Lifespan | None = None) -> FastAPI:
    """Build the API over ``ctx``; ``lifespan`` starts and stops what the context needs."""
    docs = ctx.limits.public_docs
    app = FastAPI(
        title="tabstream",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json" if docs else None,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
    )
    app.state.ctx = ctx
    for module in (health, auth, uploads, datasets, runs, jobs, results, files, models, schemas):
        app.include_router(module.router)
    if ctx.bench_echo:
        app.include_router(bench.router)
    mount_dashboard(app)
    add_openapi_components(app, openapi_components(runs.BODY_MODELS))
    app.add_exception_handler(AuthError, _unauthorized)
    app.add_exception_handler(BusUnavailable, _bus_unavailable)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_middleware(RotatedTokenHeaders)
    app.add_middleware(
        BodyLimit,
        json_limit=ctx.limits.max_json_body_bytes,
        predict_limit=ctx.limits.max_predict_body_bytes,
    )
    app.add_middleware(RequestContext)
    return app


def add_openapi_components(app: FastAPI, schemas: dict[str, Any]) -> None:
    """Add component ``schemas`` the routes refer to without FastAPI knowing the models
    (bodies validated by ``bodies.json_body``); FastAPI's own entries win on a name clash."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()  # FastAPI keeps it as app.openapi_schema
            components = document.setdefault("components", {}).setdefault("schemas", {})
            for name, schema in schemas.items():
                components.setdefault(name, schema)
            document["components"]["schemas"] = dict(sorted(components.items()))
            return document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# The dashboard is a same-origin page: scripts, styles and API calls only from this server.
DASHBOARD_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)


def mount_dashboard(app: FastAPI) -> None:
    """The dashboard: ``GET /`` is its page, ``/static`` its assets (no auth, not in OpenAPI;
    every data call the page makes carries the user's bearer token)."""
    if not (STATIC_DIR / "index.html").is_file():
        return
    index = STATIC_DIR / "index.html"
    headers = {
        "Content-Security-Policy": DASHBOARD_CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(index, media_type="text/html", headers=headers)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


async def _unauthorized(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": str(exc) or "unauthorized"},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="tabstream"'},
    )


async def _bus_unavailable(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": f"event log unavailable, nothing was submitted; retry later ({exc})"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


class RotatedTokenHeaders:
    """Adds ``x-access-token`` / ``x-refresh-token`` when the request refreshed its session."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_tokens(message: Message) -> None:
            if message["type"] == "http.response.start":
                pair = scope.get("state", {}).get("rotated_tokens")
                if pair is not None:
                    message["headers"] = [
                        *message.get("headers", []),
                        (b"x-access-token", pair.access_token.encode()),
                        (b"x-refresh-token", pair.refresh_token.encode()),
                        (b"cache-control", b"no-store"),
                    ]
            await send(message)

        await self.app(scope, receive, send_with_tokens)
