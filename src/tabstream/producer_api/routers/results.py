"""GET /v1/results/{job_id}: the outcome of a finished job in the reference API's shape.

- A finished job is ``completed`` or ``failed`` (a cancelled job is ``failed`` with an
  ``error_message`` that says so; ``GET /v1/jobs/{id}`` keeps ``cancelled``).
- An unfinished job is a **202** with ``Retry-After`` and the job submission shape
  (``job_id``, ``status`` pending|running, ``message``): there is no result yet.
- ``result_data`` of a trainer job: ``model_id`` (the winner: ensemble or refit),
  ``winner_uris`` (the winning bundle's files), the leaderboard, ensemble and Pareto front;
  of a prediction job: ``result_uri`` (the Parquet predictions) and ``presigned_url``, a signed
  download link minted afresh at every call.
- ``result_uri``: the job's persisted ``result.json`` (relative to the artifact store).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from tabstream.producer_api.context import ApiContext
from tabstream.producer_api.deps import Ctx, Tenant
from tabstream.producer_api.readmodel import Row
from tabstream.producer_api.routers.files import download_url
from tabstream.producer_api.routers.jobs import TERMINAL_STATUSES, find_job
from tabstream.producer_api.routers.models import relative_uri

router = APIRouter(tags=["results"])
RETRY_AFTER_S = 5


class JobResult(BaseModel):
    """The outcome of a finished job."""

    job_id: uuid.UUID
    status: Literal["completed", "failed"]
    result_data: dict[str, Any] | None = Field(
        default=None, description="type-specific outcome; null when failed"
    )
    result_uri: str | None = Field(default=None, description="the persisted result.json")
    error_message: str | None = None
    completed_at: datetime | None = None


class NotFinished(BaseModel):
    """202: the job has no result yet (retry after ``Retry-After`` seconds)."""

    job_id: uuid.UUID
    status: Literal["pending", "running"]
    message: str


_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": NotFinished, "description": "not finished yet; retry after Retry-After s"},
    404: {"description": "job not found"},
}


@router.get("/v1/results/{job_id}", response_model=JobResult, responses=_RESPONSES)
async def job_result(
    job_id: uuid.UUID, request: Request, ctx: Ctx, tenant: Tenant
) -> JobResult | JSONResponse:
    """The result of a finished job (completed or failed); 202 while it runs."""
    return await _result(ctx, request, tenant, find_job(ctx, tenant, job_id))


@router.get("/v1/jobs/{job_id}/result", response_model=JobResult, include_in_schema=False)
async def job_result_alias(
    job_id: uuid.UUID, request: Request, ctx: Ctx, tenant: Tenant
) -> JobResult | JSONResponse:
    """Alias of /v1/results/{job_id}."""
    return await _result(ctx, request, tenant, find_job(ctx, tenant, job_id))


async def _result(
    ctx: ApiContext, request: Request, tenant: str, job: Row
) -> JobResult | JSONResponse:
    status = job["status"]
    if status not in TERMINAL_STATUSES:
        body = NotFinished(
            job_id=job["job_id"], status=status, message=f"job is {status}; no result yet"
        )
        headers = {"Retry-After": str(RETRY_AFTER_S)}
        return JSONResponse(body.model_dump(mode="json"), 202, headers=headers)
    root = ctx.artifacts.root_uri
    uri = job.get("result_uri")
    return JobResult(
        job_id=job["job_id"],
        status="completed" if status == "completed" else "failed",
        result_data=await _data(ctx, request, tenant, job) if status == "completed" else None,
        result_uri=relative_uri(uri, root) if isinstance(uri, str) else None,
        error_message=_error_message(job),
        completed_at=job.get("finished_at"),
    )


def _error_message(job: Row) -> str | None:
    if job["status"] == "cancelled":
        return f"cancelled: {job.get('cancel_reason') or 'on request'}"
    error = job.get("error")
    if isinstance(error, dict):
        return f"{error.get('reason')}: {error.get('message')}"
    return None if error is None else str(error)


async def _data(ctx: ApiContext, request: Request, tenant: str, job: Row) -> dict[str, Any]:
    if job.get("kind") == "predict":
        return _prediction_data(ctx, request, tenant, job)
    model_id = job.get("best_model_id")
    winner = [] if model_id is None else await _bundle_uris(ctx, str(model_id))
    data = {k: job.get(k) for k in ("leaderboard", "best_model_id", "ensemble", "pareto_front")}
    return {"model_id": model_id, "winner_uris": winner, **data, "notes": job.get("notes", [])}


async def _bundle_uris(ctx: ApiContext, model_id: str) -> list[str]:
    """The winning bundle's files, relative to the artifact store."""
    return await anyio.to_thread.run_sync(ctx.artifacts.keys, f"models/{model_id}")


def _prediction_data(ctx: ApiContext, request: Request, tenant: str, job: Row) -> dict[str, Any]:
    written = job.get("predictions") or {}
    key = relative_uri(str(written.get("uri", "")), ctx.artifacts.root_uri)
    return {
        "model_id": written.get("model_id"),
        "rows": written.get("rows"),
        "sha256": written.get("sha256"),
        "result_uri": key,
        "presigned_url": download_url(ctx, request, key, tenant),
        "expires_in": ctx.limits.download_url_ttl_s,
        "notes": job.get("notes", []),
    }
