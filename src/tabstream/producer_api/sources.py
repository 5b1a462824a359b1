"""The reference API's inline Dataset (``connection_config``, ``columns``, ``filter``) checked
and resolved into the ``ResolvedSource`` the log records: an upload must be complete (its bytes'
key is looked up), an S3 object is named by a valid URI (read with the operator's settings),
other connectors are a 422 that says they are not supported."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import HTTPException

from tabstream.producer_api.context import ApiContext, utcnow
from tabstream.producer_api.ingest import DatasetRejected, refuse_artifacts_bucket
from tabstream.producer_api.readmodel import Row
from tabstream.schemas.connections import (
    DatasetSpec,
    FileUploadConnectionConfig,
    ResolvedSource,
    S3ConnectionConfig,
    unsupported_connector,
)


def resolve_source(
    ctx: ApiContext, tenant: str, spec: DatasetSpec, loc: tuple[str, ...] = ("body",)
) -> ResolvedSource:
    """``spec`` as a readable source of the tenant; 422 naming the field otherwise."""
    config = spec.connection_config
    where = [*loc, "connection_config"]
    refused = unsupported_connector(config)
    if refused:
        raise HTTPException(422, [_err([*where, "connector_type"], refused)])
    upload_key = file_format = None
    if isinstance(config, FileUploadConnectionConfig):
        upload_key, file_format = _completed_upload(ctx, tenant, config, where)
    elif isinstance(config, S3ConnectionConfig):
        _outside_artifacts(ctx, config, where)
        file_format = config.file_format
    else:
        raise HTTPException(422, [_err([*where, "connector_type"], "connector not supported")])
    return ResolvedSource(
        connection_config=config,
        upload_key=upload_key,
        file_format=file_format,
        columns=spec.column_names,
        filter=spec.filter,
    )


def _outside_artifacts(ctx: ApiContext, config: S3ConnectionConfig, where: list[Any]) -> None:
    try:
        refuse_artifacts_bucket(config.location, ctx.artifacts.root_uri)
    except DatasetRejected as exc:
        raise HTTPException(exc.status, [_err([*where, "uri"], str(exc))]) from None


def _completed_upload(
    ctx: ApiContext, tenant: str, config: FileUploadConnectionConfig, where: list[Any]
) -> tuple[str, Any]:
    upload = ctx.read_model.get_upload(tenant, str(config.id))
    if upload is None:
        raise HTTPException(422, [_err([*where, "id"], f"no upload {config.id}")])
    state = upload_state(upload)
    if state != "completed":
        message = f"upload {config.id} is {state}: PUT its bytes to the upload_url first"
        raise HTTPException(422, [_err([*where, "id"], message)])
    return str(upload["completion"]["key"]), upload["file_format"]


def upload_state(upload: Row) -> Literal["pending", "completed", "expired"]:
    """``completed`` once bytes were PUT; ``expired`` when its URL expired before that."""
    if upload.get("completion") is not None:
        return "completed"
    expired = datetime.fromisoformat(str(upload["expires_at"])) < utcnow()
    return "expired" if expired else "pending"


def _err(loc: list[Any], msg: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": "value_error"}
