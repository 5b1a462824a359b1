"""Signed downloads of job outputs (``presigned_url`` in a prediction job's result): the
signature is the authorisation, like a presigned S3 URL, and each URL expires
(``TABSTREAM_DOWNLOAD_URL_TTL_S``). Only job outputs (``predictions/...``) can be signed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
import pyarrow as pa
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, StreamingResponse

from tabstream.adapters.artifacts.port import ArtifactNotFound, InvalidArtifactKey, validate_key
from tabstream.producer_api.context import ApiContext
from tabstream.producer_api.deps import Ctx

router = APIRouter(prefix="/v1/files", tags=["results"])
PURPOSE = "download"
DOWNLOADABLE = ("predictions/",)
CHUNK = 1024 * 1024


def download_url(ctx: ApiContext, request: Request, key: str, tenant: str) -> str:
    """A fresh signed URL of the artifact ``key`` (a job output) for ``tenant``."""
    query = ctx.signed_urls.query(PURPOSE, key, tenant, ctx.limits.download_url_ttl_s)
    return f"{str(request.base_url).rstrip('/')}/v1/files/{key}?{query}"


@router.get(
    "/{key:path}",
    responses={403: {"description": "invalid or expired signature"}, 404: {"description": ""}},
    response_class=StreamingResponse,
    response_model=None,
)
async def download(
    key: str,
    ctx: Ctx,
    tenant: Annotated[str, Query(max_length=256)],
    expires: int,
    signature: Annotated[str, Query(max_length=128)],
) -> FileResponse | StreamingResponse:
    """The bytes of a job output, with the signed URL a result gave."""
    ctx.signed_urls.verify(PURPOSE, key, tenant, expires, signature)
    try:
        validate_key(key)
    except InvalidArtifactKey:
        raise HTTPException(404, "no such file") from None
    if not key.startswith(DOWNLOADABLE):
        raise HTTPException(404, "no such file")
    name = key.rsplit("/", 1)[-1]
    local = ctx.artifacts.local_path(key)
    if local is not None:
        if not local.is_file():
            raise HTTPException(404, "no such file")
        return FileResponse(local, filename=name)
    try:
        handle = await anyio.to_thread.run_sync(ctx.artifacts.open_input, key)
    except ArtifactNotFound:
        raise HTTPException(404, "no such file") from None
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return StreamingResponse(
        _chunks(handle), media_type="application/octet-stream", headers=headers
    )


async def _chunks(handle: pa.NativeFile) -> AsyncIterator[bytes]:
    try:
        while chunk := await anyio.to_thread.run_sync(handle.read, CHUNK):
            yield bytes(chunk)
    finally:
        handle.close()
