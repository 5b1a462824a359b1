"""GET /v1/results/{job_id}: the outcome of a job in the seed's JobResultResponse shape."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter

from tabstream.producer_api.deps import Ctx, Tenant
from tabstream.producer_api.readmodel import Row
from tabstream.producer_api.routers.jobs import TERMINAL_STATUSES, find_job
from tabstream.schemas import JobResultResponse

router = APIRouter(tags=["results"])
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "job not found"}}


@router.get("/v1/results/{job_id}", responses=_NOT_FOUND)
async def job_result(job_id: uuid.UUID, ctx: Ctx, tenant: Tenant) -> JobResultResponse:
    """Leaderboard, best model, ensemble and Pareto front (``result_data``), or the error."""
    return result_of(find_job(ctx, tenant, job_id))


@router.get("/v1/jobs/{job_id}/result", responses=_NOT_FOUND, include_in_schema=False)
async def job_result_alias(job_id: uuid.UUID, ctx: Ctx, tenant: Tenant) -> JobResultResponse:
    """Alias of /v1/results/{job_id}."""
    return result_of(find_job(ctx, tenant, job_id))


def result_of(job: Row) -> JobResultResponse:
    """A JobResultResponse from a job row."""
    status = job["status"]
    data = None
    if status == "completed":
        data = {k: job.get(k) for k in ("leaderboard", "best_model_id", "ensemble", "pareto_front")}
    error = job.get("error")
    if isinstance(error, dict):
        error = f"{error.get('reason')}: {error.get('message')}"
    return JobResultResponse(
        job_id=job["job_id"],
        status=status,
        result_data=data,
        result_uri=job.get("result_uri"),
        error_message=error,
        completed_at=job.get("finished_at") if status in TERMINAL_STATUSES else None,
    )
