"""Registered models: list, describe, and predict in the teacher protocol.

``POST /v1/models/{id}/predict`` asks the app's ``ModelServer`` (the model loaded through the
artifact store with its recorded sha256 verified, kept in a memory-bounded LRU,
``TABSTREAM_MODEL_CACHE_MB``) in a worker thread, so the event loop never blocks. Batches above
``TABSTREAM_MAX_PREDICT_ROWS`` are a 422. A model whose bytes fail the check is a 409 and is
never served.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from tabstream.adapters.models.port import ModelRefused, SamplesRefused
from tabstream.producer_api.deps import Ctx, Tenant
from tabstream.producer_api.errors import cursor_errors_as_422
from tabstream.producer_api.responses import ModelPage

router = APIRouter(prefix="/v1/models", tags=["models"])
Cell = StrictBool | StrictInt | StrictFloat | StrictStr | None
INTEGRITY = "model artifact failed its integrity check; it will not be served"


class PredictRequest(BaseModel):
    """The teacher protocol body."""

    model_config = ConfigDict(extra="forbid")
    samples: list[list[Cell]]
    feature_names: list[Annotated[str, Field(max_length=512)]]


class PredictResponse(BaseModel):
    """Predictions (labels or values), class probabilities and classes (classification)."""

    predictions: list[Any]
    probabilities: list[list[float | None]] | None = None
    classes: list[Any] | None = None


@router.get("")
async def list_models(
    ctx: Ctx,
    tenant: Tenant,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ModelPage:
    """The caller's models, newest first."""
    with cursor_errors_as_422():
        page = ctx.read_model.list_models(tenant, cursor=cursor, limit=limit)
    root = ctx.artifacts.root_uri
    return ModelPage(items=[_public(m, root) for m in page.items], next_cursor=page.next_cursor)


@router.get("/{model_id}", responses={404: {"description": "model not found"}})
async def get_model(model_id: uuid.UUID, ctx: Ctx, tenant: Tenant) -> dict[str, Any]:
    """One model: task, features with types, classes, metrics, job, sha256, created_at."""
    return _public(_model(ctx, tenant, model_id), ctx.artifacts.root_uri)


@router.post(
    "/{model_id}/predict",
    responses={
        404: {"description": "model not found"},
        409: {"description": INTEGRITY},
        422: {"description": "missing features, bad cells, or too many rows"},
        503: {"description": "model artifact unavailable"},
    },
)
async def predict(
    model_id: uuid.UUID, body: PredictRequest, ctx: Ctx, tenant: Tenant
) -> PredictResponse:
    """Predict ``samples`` with the model (the teacher protocol: this is a valid teacher)."""
    row = _model(ctx, tenant, model_id)
    served = ctx.models
    if len(body.samples) > served.max_rows:
        raise HTTPException(422, _err("samples", f"at most {served.max_rows} rows per request"))
    model, digest = str(row["model_id"]), str(row["sha256"])
    try:
        out = await asyncio.to_thread(
            served.predict, model, digest, body.samples, body.feature_names
        )
    except ModelRefused:
        raise HTTPException(409, INTEGRITY) from None
    except SamplesRefused as exc:
        raise HTTPException(422, _err("feature_names", str(exc))) from None
    except OSError:
        raise HTTPException(503, "model artifact unavailable; retry later") from None
    return PredictResponse(**out)


def _model(ctx: Ctx, tenant: str, model_id: uuid.UUID) -> dict[str, Any]:
    found = ctx.read_model.get_model(tenant, str(model_id))
    if found is None:
        raise HTTPException(404, "model not found")
    return dict(found)


def _public(row: Any, artifact_root: str) -> dict[str, Any]:
    """The row without its tenant, its ``uri`` relative to the artifact store (where the
    server keeps its files is not the caller's business)."""
    out = {k: v for k, v in dict(row).items() if k != "tenant"}
    if isinstance(out.get("uri"), str):
        out["uri"] = relative_uri(out["uri"], artifact_root)
    return out


def relative_uri(uri: str, artifact_root: str) -> str:
    """``<root>/models/x/y`` -> ``models/x/y``; a URI outside the root keeps its last part."""
    root = artifact_root.rstrip("/") + "/"
    return uri[len(root) :] if uri.startswith(root) else uri.rstrip("/").rsplit("/", 1)[-1]


def _err(field: str, msg: str) -> list[dict[str, Any]]:
    return [{"loc": ["body", field], "msg": msg, "type": "value_error"}]
