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
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    TypeAdapter,
    ValidationError,
)

from tabstream.adapters.models.port import ModelRefused, SamplesRefused
from tabstream.producer_api.bodies import in_body, json_response
from tabstream.producer_api.context import utcnow
from tabstream.producer_api.deps import Ctx, Tenant
from tabstream.producer_api.errors import cursor_errors_as_422
from tabstream.producer_api.responses import ModelPage
from tabstream.producer_api.sources import resolve_source
from tabstream.schemas import PredictRequested
from tabstream.schemas.connections import PredictJobRequest

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


class JobSubmission(BaseModel):
    """A job was accepted (the reference API's job submission response)."""

    job_id: uuid.UUID
    status: Literal["pending", "running", "completed", "failed"]
    message: str


def _body_kind(value: Any) -> str:
    return "job" if isinstance(value, dict) and "dataset" in value else "samples"


PredictBody = Annotated[
    Annotated[PredictJobRequest, Tag("job")] | Annotated[PredictRequest, Tag("samples")],
    Discriminator(_body_kind),
]
_PREDICT_BODY = TypeAdapter(PredictBody)


@router.post(
    "/{model_id}/predict",
    response_model=PredictResponse,
    responses={
        202: {"model": JobSubmission, "description": "a batch-scoring job was submitted"},
        404: {"description": "model not found"},
        409: {"description": INTEGRITY},
        422: {"description": "missing features, bad cells, too many rows, or a bad dataset"},
        503: {"description": "model artifact unavailable, or the event log (nothing sent)"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _PREDICT_BODY.json_schema()}},
        }
    },
)
async def predict(model_id: uuid.UUID, request: Request, ctx: Ctx, tenant: Tenant) -> Response:
    """Predict with the model, in one of two forms:

    - ``{samples, feature_names}`` (the teacher protocol, so a model here is a valid teacher):
      200 with the predictions; ``feature_names`` may come in any order.
    - ``{dataset: {columns?, connection_config, filter?}}`` (the reference API): a batch-scoring
      job over the whole dataset, 202 with its ``job_id``; the Parquet predictions come with
      ``GET /v1/results/{job_id}`` (``result_data.presigned_url``).
    """
    row = _model(ctx, tenant, model_id)
    body = await _predict_body(request)
    if isinstance(body, PredictJobRequest):
        submitted = await submit_prediction(ctx, tenant, row, body)
        return json_response(submitted, 202)
    return json_response(await _predict_samples(ctx, row, body), 200)


async def _predict_body(request: Request) -> PredictJobRequest | PredictRequest:
    try:
        return _PREDICT_BODY.validate_json(await request.body())
    except ValidationError as exc:
        errors = [in_body(e) for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


async def submit_prediction(
    ctx: Ctx, tenant: str, model: dict[str, Any], body: PredictJobRequest
) -> JobSubmission:
    """Publish the PredictRequested of a batch-scoring job on a pool's command topic."""
    source = resolve_source(ctx, tenant, body.dataset, ("body", "dataset"))
    pools = ctx.topics.pools
    pool = "cpu" if "cpu" in pools else pools[0]
    topic = ctx.topics.commands(pool)
    command = PredictRequested(
        job_id=ctx.new_job_id(topic),
        model_id=model["model_id"],
        model_sha256=model["sha256"],
        source=source,
        pool=pool,
        submitted_at=utcnow(),
    )
    applied = await ctx.wait_applied(await ctx.publish_envelope(topic, command, tenant))
    message = f"prediction job accepted on pool {pool!r}"
    return JobSubmission(
        job_id=command.job_id,
        status="pending",
        message=message + ("" if applied else " (projection catching up)"),
    )


async def _predict_samples(ctx: Ctx, row: dict[str, Any], body: PredictRequest) -> PredictResponse:
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
