"""Datasets: upload (multipart CSV/Parquet) or import (JSON uri), list and describe."""

from __future__ import annotations

import json
import uuid
from typing import IO, Annotated, Any

import anyio
from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import ValidationError

from tabstream.producer_api.context import ApiContext, utcnow
from tabstream.producer_api.deps import Ctx, Tenant
from tabstream.producer_api.errors import cursor_errors_as_422
from tabstream.producer_api.ingest import (
    DatasetRejected,
    IngestLimits,
    StoredDataset,
    ingest,
    ingest_source,
    open_import,
)
from tabstream.producer_api.responses import (
    DatasetOut,
    DatasetPage,
    dataset_out,
    with_reference_fields,
)
from tabstream.producer_api.sources import resolve_source
from tabstream.producer_api.uploads import read_form, read_small_body
from tabstream.schemas import DatasetImport, DatasetInfo, DatasetRegistered
from tabstream.schemas.connections import DatasetCreate, ResolvedSource, S3ConnectionConfig

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])
MAX_NAME = 256
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
            "application/json": {
                "schema": {
                    "oneOf": [
                        DatasetImport.model_json_schema(),
                        DatasetCreate.model_json_schema(),
                    ]
                }
            },
        },
    }
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "file:// import outside TABSTREAM_IMPORT_ROOT, or of the artifact store"},
    413: {"description": "upload or imported file larger than TABSTREAM_MAX_UPLOAD_MB"},
    415: {"description": "neither multipart/form-data nor application/json"},
    422: {"description": "invalid import uri, unparseable data or invalid columns"},
    502: {"description": "the S3 storage behind an s3:// import could not be read"},
}


@router.post("", status_code=201, openapi_extra=_UPLOAD_BODY, responses=_ERRORS)
async def register_dataset(request: Request, ctx: Ctx, tenant: Tenant) -> DatasetOut:
    """Register a dataset from a multipart ``file`` (+ ``name``), a JSON ``{uri, name}`` import,
    or the reference API's ``{connection_config, columns?, filter?}`` (an ``s3`` object, or a
    ``file_upload`` whose bytes were PUT to its upload URL; ``columns`` keeps only those
    columns, ``filter`` only the rows it selects). Nothing is stored when the source cannot be
    read."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        upload, name = await read_form(request, ctx.limits.max_upload_bytes)
        try:
            check_name(name)
            default = (upload.filename or "dataset").rsplit("/", 1)[-1][:256] or "dataset"
            return await _register(ctx, tenant, upload.file, name or default, "file")
        finally:
            await upload.close()
    if content_type == "application/json":
        body = await read_small_body(request)
        if _has_connection_config(body):
            return await _register_source(ctx, tenant, _dataset_create(body))
        spec = _import_spec(body)
        limits = ctx.limits
        source = await _run(
            open_import,
            spec.location,
            limits.import_root,
            limits.s3_import,
            limits.max_upload_bytes,
            ctx.artifacts.root_uri,
        )
        try:
            default = spec.location.path.rsplit("/", 1)[-1][:256] or "dataset"
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
    with cursor_errors_as_422():
        page = ctx.read_model.list_datasets(tenant, cursor=cursor, limit=limit)
    shown = (dataset_out(d, ctx.report_unshowable) for d in page.items)
    return DatasetPage(items=[d for d in shown if d is not None], next_cursor=page.next_cursor)


@router.get("/{dataset_id}", responses={404: {"description": "no such dataset"}})
async def get_dataset(dataset_id: uuid.UUID, ctx: Ctx, tenant: Tenant) -> DatasetOut:
    """One dataset: rows, columns (name, type, nulls), sha256."""
    found = ctx.read_model.get_dataset(tenant, str(dataset_id))
    shown = None if found is None else dataset_out(found, ctx.report_unshowable)
    if shown is None:
        raise HTTPException(404, "dataset not found")
    return shown


def check_name(name: str | None) -> None:
    """422 naming ``name`` when it is longer than 256 characters (empty: the file's name)."""
    if name and len(name) > MAX_NAME:
        message = f"name must be at most {MAX_NAME} characters; got {len(name)}"
        raise HTTPException(422, [{"loc": ["body", "name"], "msg": message, "type": "value_error"}])


def _has_connection_config(body: bytes) -> bool:
    try:
        data = json.loads(body)
    except ValueError:
        return False
    return isinstance(data, dict) and "connection_config" in data


def _dataset_create(body: bytes) -> DatasetCreate:
    try:
        return DatasetCreate.model_validate_json(body)
    except ValidationError as exc:
        raise HTTPException(422, _body_errors(exc)) from None


async def _register_source(ctx: ApiContext, tenant: str, spec: DatasetCreate) -> DatasetOut:
    """Register a dataset read from the reference API's connection_config."""
    source = resolve_source(ctx, tenant, spec)
    limits = ctx.limits
    caps = IngestLimits(limits.max_upload_bytes, limits.max_columns, limits.max_rows)
    dataset_id = uuid.uuid4()
    stored = await _run(
        ingest_source, source, ctx.artifacts, limits.s3_import, str(dataset_id), caps
    )
    name = spec.name or _default_name(source)
    return await _publish(ctx, tenant, dataset_id, stored, name, source)


def _default_name(source: ResolvedSource) -> str:
    config = source.connection_config
    if isinstance(config, S3ConnectionConfig):
        return config.location.key.rsplit("/", 1)[-1][:256] or "dataset"
    return f"upload-{config.id}"


def _import_spec(body: bytes) -> DatasetImport:
    try:
        return DatasetImport.model_validate_json(body)
    except ValidationError as exc:
        raise HTTPException(422, _body_errors(exc)) from None


async def _run(func: Any, *args: Any, field: str | None = None) -> Any:
    """``func(*args)`` in a worker thread; a DatasetRejected becomes its HTTP error, located at
    ``field`` when given (the body field the data came from)."""
    try:
        return await anyio.to_thread.run_sync(func, *args)
    except DatasetRejected as exc:
        detail: Any = str(exc)
        if exc.status == 422:
            loc = ["body", field or exc.field]
            detail = [{"loc": loc, "msg": str(exc), "type": "value_error"}]
        raise HTTPException(exc.status, detail) from None


async def _register(
    ctx: ApiContext, tenant: str, source: IO[bytes], name: str, field: str
) -> DatasetOut:
    dataset_id = uuid.uuid4()
    limits = ctx.limits
    stored = await _run(
        ingest,
        source,
        ctx.artifacts,
        str(dataset_id),
        limits.max_columns,
        limits.max_rows,
        field=field,
    )
    return await _publish(ctx, tenant, dataset_id, stored, name, None)


async def _publish(
    ctx: ApiContext,
    tenant: str,
    dataset_id: uuid.UUID,
    stored: StoredDataset,
    name: str,
    source: ResolvedSource | None,
) -> DatasetOut:
    """Publish the DatasetRegistered of a stored table and answer with the dataset; the
    stored table is deleted when that fails."""
    try:
        # Everything the answer shows is validated before the event is published: nothing
        # that the read side cannot show may enter the log.
        info = DatasetInfo(
            dataset_id=dataset_id,
            name=name,
            rows=stored.rows,
            columns=stored.columns,
            sha256=stored.sha256,
            created_at=utcnow(),
        )
        event = DatasetRegistered(**info.model_dump(), uri=stored.uri, source=source)
        answer = with_reference_fields(info, event.model_dump(mode="json").get("source"))
    except ValidationError as exc:
        await anyio.to_thread.run_sync(ctx.artifacts.delete, f"datasets/{dataset_id}")
        raise HTTPException(422, _body_errors(exc)) from None
    try:
        published = await ctx.publish_envelope(ctx.topics.events, event, tenant)
    except BaseException:
        await anyio.to_thread.run_sync(ctx.artifacts.delete, f"datasets/{dataset_id}")
        raise
    await ctx.wait_applied(published)
    return answer


def _body_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False)
    ]
