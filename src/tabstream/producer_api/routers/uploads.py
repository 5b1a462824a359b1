"""Uploads (the reference API): ``POST /v1/uploads`` hands out a signed, expiring, single-use
URL; the client PUTs the file's bytes to it, then registers a dataset with the returned
``connection_config`` (``POST /v1/datasets``).

The URL is served by tabstream itself (``PUT /v1/uploads/{id}/content``): the signature is its
authorisation, the upload cap (``TABSTREAM_MAX_UPLOAD_MB``) applies while the bytes stream, and
an URL is used once: every PUT stores its bytes under a key of its own and publishes an
UploadCompleted; the first one the projection folds wins, a later one is answered 409 and its
bytes deleted (so two API replicas cannot both accept the same URL).
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from datetime import timedelta
from typing import IO, Annotated, Any, Literal

import anyio
from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from tabstream.adapters.artifacts.port import ArtifactStore
from tabstream.adapters.dataset_sources import PARQUET_MAGIC
from tabstream.producer_api.context import ApiContext, utcnow
from tabstream.producer_api.deps import Ctx, Tenant
from tabstream.producer_api.readmodel import Row
from tabstream.producer_api.sources import upload_state
from tabstream.producer_api.uploads import BodyTooLarge, check_declared_length, counting
from tabstream.schemas import UploadCompleted, UploadCreated
from tabstream.schemas.connections import PKL_REFUSED, UploadRequest, content_type_of

router = APIRouter(prefix="/v1/uploads", tags=["uploads"])
PURPOSE = "upload"
SPOOL_IN_MEMORY = 8 * 1024 * 1024


class UploadConnectionConfig(BaseModel):
    """The ``file_upload`` connection_config of an upload (pass it to POST /v1/datasets)."""

    connector_type: Literal["file_upload"] = "file_upload"
    uri: str = Field(description="where tabstream keeps the upload (relative to its store)")
    id: uuid.UUID = Field(description="the upload's id")
    state: Literal["pending", "completed", "expired"]


class UploadCreatedOut(BaseModel):
    """POST /v1/uploads response."""

    connection_config: UploadConnectionConfig
    upload_url: str = Field(description="PUT the file's bytes here (signed, single-use)")
    content_type: str = Field(description="the Content-Type to PUT with")
    expires_in: int = Field(description="seconds until upload_url expires")


class UploadDone(BaseModel):
    """PUT response: the upload is complete."""

    connection_config: UploadConnectionConfig
    size_bytes: int
    sha256: str


@router.post("", status_code=201, responses={422: {"description": "pkl or unknown format"}})
async def create_upload(
    body: UploadRequest, request: Request, ctx: Ctx, tenant: Tenant
) -> UploadCreatedOut:
    """Create an upload: a signed URL to PUT a CSV or Parquet file to (pkl is refused)."""
    if body.file_format == "pkl":
        raise HTTPException(422, [_err(["body", "file_format"], PKL_REFUSED)])
    upload_id, now, ttl = uuid.uuid4(), utcnow(), ctx.limits.upload_url_ttl_s
    event = UploadCreated(
        upload_id=upload_id,
        file_format=body.file_format,
        expires_at=now + timedelta(seconds=ttl),
        created_at=now,
    )
    await ctx.wait_applied(await ctx.publish_envelope(ctx.topics.events, event, tenant))
    query = ctx.signed_urls.query(PURPOSE, str(upload_id), tenant, ttl)
    base = str(request.base_url).rstrip("/")
    return UploadCreatedOut(
        connection_config=_config(upload_id, "pending"),
        upload_url=f"{base}/v1/uploads/{upload_id}/content?{query}",
        content_type=content_type_of(body.file_format),
        expires_in=ttl,
    )


@router.get("/{upload_id}", responses={404: {"description": "no such upload"}})
async def get_upload(upload_id: uuid.UUID, ctx: Ctx, tenant: Tenant) -> UploadConnectionConfig:
    """The upload's connection_config and its state."""
    return _config(upload_id, upload_state(_upload(ctx, tenant, upload_id)))


@router.put(
    "/{upload_id}/content",
    responses={
        403: {"description": "invalid or expired signature"},
        409: {"description": "this upload URL was already used"},
        413: {"description": "larger than TABSTREAM_MAX_UPLOAD_MB"},
        422: {"description": "empty body, or bytes that are not the declared file_format"},
    },
    openapi_extra={"requestBody": {"content": {"application/octet-stream": {}}}},
)
async def put_upload_content(
    upload_id: uuid.UUID,
    request: Request,
    ctx: Ctx,
    tenant: Annotated[str, Query(max_length=256)],
    expires: int,
    signature: Annotated[str, Query(max_length=128)],
) -> UploadDone:
    """Store the bytes of an upload (the signed URL from POST /v1/uploads; no token needed)."""
    ctx.signed_urls.verify(PURPOSE, str(upload_id), tenant, expires, signature)
    upload = _upload(ctx, tenant, upload_id)
    if upload.get("completion") is not None:
        raise HTTPException(409, "this upload URL was already used")
    spool, size, digest = await _receive(request, ctx.limits.max_upload_bytes)
    try:
        _check_format(spool, str(upload["file_format"]), size)
        key = f"uploads/{upload_id}/{uuid.uuid4().hex}.{upload['file_format']}"
        await anyio.to_thread.run_sync(_store, ctx.artifacts, key, spool)
    finally:
        spool.close()
    return await _complete(ctx, tenant, upload_id, key, size, digest)


async def _complete(
    ctx: ApiContext, tenant: str, upload_id: uuid.UUID, key: str, size: int, digest: str
) -> UploadDone:
    """Publish the completion; answer 409 (and drop our bytes) when another PUT won."""
    event = UploadCompleted(
        upload_id=upload_id, key=key, size_bytes=size, sha256=digest, completed_at=utcnow()
    )
    try:
        published = await ctx.publish_envelope(ctx.topics.events, event, tenant)
    except BaseException:
        await anyio.to_thread.run_sync(ctx.artifacts.delete, key)
        raise
    await ctx.wait_applied(published)
    won = (_upload(ctx, tenant, upload_id).get("completion") or {}).get("key")
    if won is not None and won != key:
        await anyio.to_thread.run_sync(ctx.artifacts.delete, key)
        raise HTTPException(409, "this upload URL was already used")
    return UploadDone(
        connection_config=_config(upload_id, "completed"), size_bytes=size, sha256=digest
    )


async def _receive(request: Request, limit: int) -> tuple[IO[bytes], int, str]:
    """Spool the body (413 past ``limit``), hashing it as it comes."""
    check_declared_length(request, limit)
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
    sha, size = hashlib.sha256(), 0
    try:
        async for chunk in Request(request.scope, counting(request.receive, limit)).stream():
            sha.update(chunk)
            size += len(chunk)
            spool.write(chunk)
    except BodyTooLarge:
        spool.close()
        raise
    spool.seek(0)
    return spool, size, sha.hexdigest()


def _check_format(spool: IO[bytes], file_format: str, size: int) -> None:
    if size == 0:
        raise HTTPException(422, [_err(["body"], "the upload is empty")])
    head = spool.read(4)
    spool.seek(0)
    if (head == PARQUET_MAGIC) != (file_format == "parquet"):
        message = f"the bytes are not {file_format}, the upload's file_format"
        raise HTTPException(422, [_err(["body"], message)])


def _store(artifacts: ArtifactStore, key: str, spool: IO[bytes]) -> None:
    with artifacts.open_output(key) as out:
        while chunk := spool.read(1024 * 1024):
            out.write(chunk)


def _upload(ctx: ApiContext, tenant: str, upload_id: uuid.UUID) -> Row:
    found = ctx.read_model.get_upload(tenant, str(upload_id))
    if found is None:
        raise HTTPException(404, "upload not found")
    return found


def _config(upload_id: uuid.UUID, state: Any) -> UploadConnectionConfig:
    return UploadConnectionConfig(uri=f"uploads/{upload_id}", id=upload_id, state=state)


def _err(loc: list[Any], msg: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": "value_error"}
