"""Jobs: list, describe, cancel, and the event history (JSON or live SSE)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query
from fastapi.responses import StreamingResponse

from tabstream.producer_api.context import ApiContext
from tabstream.producer_api.deps import Ctx, Tenant
from tabstream.producer_api.errors import cursor_errors_as_422
from tabstream.producer_api.history import job_history
from tabstream.producer_api.readmodel import Row
from tabstream.producer_api.responses import (
    CancelResponse,
    JobOut,
    JobPage,
    TrialPage,
    job_out,
)
from tabstream.producer_api.sse import parse_last_event_id, stream
from tabstream.schemas import CancelRequested, JobStatus

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "job not found"}}
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


def find_job(ctx: ApiContext, tenant: str, job_id: uuid.UUID) -> Row:
    """The tenant's job or 404 (also for other tenants' jobs)."""
    job = ctx.read_model.get_job(tenant, str(job_id))
    if job is None:
        raise HTTPException(404, "job not found")
    return job


@router.get("")
async def list_jobs(
    ctx: Ctx,
    tenant: Tenant,
    status: JobStatus | None = None,
    dataset_id: uuid.UUID | None = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JobPage:
    """The caller's jobs, newest first; filter by status and dataset; cursor pagination."""
    with cursor_errors_as_422():
        page = ctx.read_model.list_jobs(
            tenant,
            status=status,
            dataset_id=str(dataset_id) if dataset_id else None,
            cursor=cursor,
            limit=limit,
        )
    return JobPage(items=[job_out(j) for j in page.items], next_cursor=page.next_cursor)


@router.get("/{job_id}", responses=_NOT_FOUND)
async def get_job(job_id: uuid.UUID, ctx: Ctx, tenant: Tenant) -> JobOut:
    """Status, attempts, timestamps, progress, redacted request, leaderboard, error."""
    return job_out(find_job(ctx, tenant, job_id))


@router.get("/{job_id}/trials", responses=_NOT_FOUND)
async def job_trials(job_id: uuid.UUID, ctx: Ctx, tenant: Tenant) -> TrialPage:
    """The job's trials (one per row and trial: params, metrics, score, timings), in order."""
    find_job(ctx, tenant, job_id)
    trials = ctx.read_model.job_trials(tenant, str(job_id))
    items = [{k: v for k, v in t.items() if k != "tenant"} for t in trials]
    items.sort(key=lambda t: (t.get("row", 0), t.get("trial", 0)))
    return TrialPage(job_id=job_id, items=items)


@router.post(
    "/{job_id}/cancel",
    status_code=202,
    responses={**_NOT_FOUND, 409: {"description": "job already finished"}},
)
async def cancel_job(job_id: uuid.UUID, ctx: Ctx, tenant: Tenant) -> CancelResponse:
    """Ask the workers to cancel a job (CancelRequested on the control topic)."""
    job = find_job(ctx, tenant, job_id)
    if job.get("status") in TERMINAL_STATUSES:
        raise HTTPException(409, f"job is already {job['status']}")
    await ctx.publish(ctx.topics.control, CancelRequested(job_id=job_id), tenant)
    return CancelResponse(job_id=job_id, status=job["status"], message="cancellation requested")


@router.get(
    "/{job_id}/events",
    responses={
        **_NOT_FOUND,
        200: {
            "description": "the job's envelopes in order, or a live SSE stream",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
    },
)
async def job_events(
    job_id: uuid.UUID,
    ctx: Ctx,
    tenant: Tenant,
    accept: Annotated[str | None, Header()] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=64)] = None,
) -> Any:
    """Full history from the log; with ``Accept: text/event-stream`` a live SSE stream."""
    job = find_job(ctx, tenant, job_id)
    topics = _job_topics(ctx, job)
    if accept and "text/event-stream" in accept:
        frames = stream(
            ctx.log,
            str(job_id),
            topics,
            ctx.topics.events,
            parse_last_event_id(last_event_id),
            ctx.limits.sse_heartbeat_s,
        )
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(frames, media_type="text/event-stream", headers=headers)
    history = await job_history(ctx.log, str(job_id), topics, ctx.topics.events)
    return {"job_id": str(job_id), "events": [e.envelope for e in history.events]}


def _job_topics(ctx: ApiContext, job: Row) -> list[str]:
    pools = [job["pool"]] if job.get("pool") else list(ctx.topics.pools)
    return [*(ctx.topics.commands(p) for p in pools), ctx.topics.control, ctx.topics.events]
