"""A cap on every request body that is not a multipart upload (those have their own cap).

A declared ``Content-Length`` over the cap is refused before anything is read; a body that
streams past it (chunked, or lying about its length) is refused as soon as it does. Either way
the answer is a 413 and nothing was parsed, published or stored.
"""

from __future__ import annotations

import re

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from tabstream.producer_api.uploads import counting

_PREDICT = re.compile(r"^/v1/models/[^/]+/predict$")
_UPLOAD_CONTENT = re.compile(r"^/v1/uploads/[^/]+/content$")


class BodyLimit:
    """ASGI middleware: 413 for a non-multipart body over ``json_limit`` bytes
    (``predict_limit`` on ``POST /v1/models/{id}/predict``, whose batches are larger). Upload
    bodies (multipart, and the bytes PUT to an upload URL) have the upload cap instead."""

    def __init__(self, app: ASGIApp, json_limit: int, predict_limit: int) -> None:
        self.app = app
        self.json_limit, self.predict_limit = json_limit, predict_limit

    def limit_for(self, scope: Scope) -> int | None:
        """The cap for this request, or None when another one applies (multipart uploads)."""
        if _content_type(scope).startswith(b"multipart/form-data"):
            return None
        if _UPLOAD_CONTENT.match(scope["path"]):
            return None
        return self.predict_limit if _PREDICT.match(scope["path"]) else self.json_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limit_for(scope) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _too_large(limit)(scope, receive, send)
            return
        await self.app(scope, counting(receive, limit), send)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


def _content_type(scope: Scope) -> bytes:
    return (_header(scope, b"content-type") or b"").strip().lower()


def _declared_length(scope: Scope) -> int | None:
    raw = _header(scope, b"content-length")
    return int(raw) if raw is not None and raw.strip().isdigit() else None


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse(
        {"detail": f"request body exceeds the limit of {limit} bytes"},
        status_code=413,
        headers={"Connection": "close"},
    )
