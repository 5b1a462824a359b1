"""Request bodies read under a byte limit while streaming (nothing is buffered whole first)."""

from __future__ import annotations

from fastapi import HTTPException, Request
from starlette.datastructures import FormData, UploadFile
from starlette.types import Message, Receive

MAX_JSON_BODY = 64 * 1024


class BodyTooLarge(HTTPException):
    """413: the body passed the configured limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the upload limit of {limit} bytes")


def check_declared_length(request: Request, limit: int) -> None:
    """413 before reading anything when Content-Length already exceeds ``limit``."""
    declared = request.headers.get("content-length")
    if declared is None:
        return
    try:
        size = int(declared)
    except ValueError:
        raise HTTPException(400, "invalid Content-Length") from None
    if size > limit:
        raise BodyTooLarge(limit)


def limited(request: Request, limit: int) -> Request:
    """A view of ``request`` whose body stream raises 413 once more than ``limit`` bytes came."""
    return Request(request.scope, counting(request.receive, limit))


def counting(receive: Receive, limit: int) -> Receive:
    """``receive`` raising ``BodyTooLarge`` once the body passed ``limit`` bytes."""
    received = 0

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
        return message

    return counted


async def read_form(request: Request, limit: int) -> tuple[UploadFile, str | None]:
    """Stream a multipart body (files spool to disk) and return its ``file`` and ``name``."""
    check_declared_length(request, limit)
    form: FormData = await limited(request, limit).form(max_files=1, max_fields=8)
    upload, name = form.get("file"), form.get("name")
    if not isinstance(upload, UploadFile):
        raise HTTPException(
            422,
            [
                {
                    "loc": ["body", "file"],
                    "msg": "multipart field 'file' is required",
                    "type": "missing",
                }
            ],
        )
    if name is not None and not isinstance(name, str):
        raise HTTPException(
            422, [{"loc": ["body", "name"], "msg": "name must be text", "type": "string_type"}]
        )
    return upload, name


async def read_small_body(request: Request, limit: int = MAX_JSON_BODY) -> bytes:
    """The whole body of a small (JSON) request, refused past ``limit`` bytes."""
    check_declared_length(request, limit)
    chunks: list[bytes] = []
    async for chunk in limited(request, limit).stream():
        chunks.append(chunk)
    return b"".join(chunks)
