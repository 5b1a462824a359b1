"""Datasets: upload (multipart CSV/Parquet) or import (JSON uri), list and describe."""

from __future__ import annotations

import uuid
from typing import IO, Annotated, Any

import anyio
from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import ValidationError

from tabstream.producer_api.context import ApiContext, utcnow
from tabstream.producer_api.deps import Ctx, Tenant
from tabstream.producer_api.ingest import DatasetRejected, ingest, open_import
from tabstream.producer_api.responses import DatasetOut, DatasetPage, dataset_out
from tabstream.producer_api.uploads import read_form, read_small_body
from tabstream.schemas import DatasetImport, DatasetRegistered

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])
_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "name": {"type": "string", "minLength": 1, "maxLength": 256},
                    },
                }
            },
            "application/json": {"schema": DatasetImport.model_json_schema()},
        },
    }
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "file:// import outside TABSTREAM_IMPORT_ROOT"},
    413: {"description": "upload larger than TABSTREAM_MAX_UPLOAD_MB"},
    415: {"description": "neither multipart/form-data nor application/json"},
    422: {"description": "unparseable data or invalid columns"},
}


@router.post("", status_code=201, openapi_extra=_UPLOAD_BODY, responses=_ERRORS)
async def register_dataset(request: Request, ctx: Ctx, tenant: Tenant) -> DatasetOut:
    """Register a dataset from a multipart ``file`` (+ ``name``) or a JSON ``{uri, name}``."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        upload, name = await read_form(request, ctx.limits.max_upload_bytes)
        try:
            default = (upload.filename or "dataset").rsplit("/", 1)[-1][:256] or "dataset"
            return await _register(ctx, tenant, upload.file, name or default, "file")
        finally:
            await upload.close()
    if content_type == "application/json":
        spec = _import_spec(await read_small_body(request))
        source = await _run(open_import, spec.uri, ctx.limits.import_root)
        try:
            default = spec.uri.rstrip("/").rsplit("/", 1)[-1][:256] or "dataset"
            return await _register(ctx, tenant, source, spec.name or default, "uri")
        finally:
            source.close()
    raise HTTPException(
        415, "send multipart/form-data (file, name) or application/json (uri, name)"
    )


@router.get("")
async def list_datasets(
    ctx: Ctx,
    tenant: Tenant,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DatasetPage:
    """The caller's datasets."""
    page = ctx.read_model.list_datasets(tenant, cursor=cursor, limit=limit)
    return DatasetPage(items=[dataset_out(d) for d in page.items], next_cursor=page.next_cursor)


@router.get("/{dataset_id}", responses={404: {"description": "no such dataset"}})
async def get_dataset(dataset_id: uuid.UUID, ctx: Ctx, tenant: Tenant) -> DatasetOut:
    """One dataset: rows, columns (name, type, nulls), sha256."""
    found = ctx.read_model.get_dataset(tenant, str(dataset_id))
    if found is None:
        raise HTTPException(404, "dataset not found")
    return dataset_out(found)


def _import_spec(body: bytes) -> DatasetImport:
    try:
        return DatasetImport.model_validate_json(body)
    except ValidationError as exc:
        detail = [
            {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()
        ]
        raise HTTPException(422, detail) from None


async def _run(func: Any, *args: Any) -> Any:
    try:
        return await anyio.to_thread.run_sync(func, *args)
    except DatasetRejected as exc:
        detail: Any = str(exc)
        if exc.status == 422:
            detail = [{"loc": ["body", exc.field], "msg": str(exc), "type": "value_error"}]
        raise HTTPException(exc.status, detail) from None


async def _register(
    ctx: ApiContext, tenant: str, source: IO[bytes], name: str, field: str
) -> DatasetOut:
    dataset_id = uuid.uuid4()
    limits = ctx.limits
    stored = await _run(
        ingest, source, ctx.artifacts, str(dataset_id), limits.max_columns, limits.max_rows
    )
    event = DatasetRegistered(
        dataset_id=dataset_id,
        name=name,
        rows=stored.rows,
        columns=stored.columns,
        sha256=stored.sha256,
        uri=stored.uri,
        created_at=utcnow(),
    )
    try:
        published = await ctx.publish_envelope(ctx.topics.events, event, tenant)
    except BaseException:
        await anyio.to_thread.run_sync(ctx.artifacts.delete, f"datasets/{dataset_id}")
        raise
    await ctx.wait_applied(published)
    return DatasetOut(
        dataset_id=dataset_id,
        name=name,
        rows=stored.rows,
        columns=stored.columns,
        sha256=stored.sha256,
        created_at=event.created_at,
    )
