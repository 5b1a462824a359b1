"""Publish worker events for a job, as a worker would (tests only)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from tabstream.adapters.bus.port import OutgoingRecord
from tabstream.producer_api.context import ApiContext
from tabstream.schemas import (
    Envelope,
    EventPayload,
    JobCompleted,
    JobStarted,
    LeaderboardEntry,
    Producer,
    encode,
    headers,
)

WORKER = Producer(service="worker", instance="w1")


async def emit(ctx: ApiContext, tenant: str, payload: EventPayload, seq: int) -> None:
    """Publish ``payload`` on the events topic (attempt 1) and wait until it is folded."""
    env = Envelope.wrap(payload, tenant=tenant, producer=WORKER, attempt=1, seq=seq)
    pos = await ctx.log.publish(
        OutgoingRecord(ctx.topics.events, env.aggregate_id, encode(env), headers(env))
    )
    assert await ctx.read_model.wait_applied(ctx.topics.events, pos.partition, pos.offset, 5)


async def start(ctx: ApiContext, tenant: str, job_id: str) -> None:
    """JobStarted."""
    payload = JobStarted(
        job_id=uuid.UUID(job_id),
        attempt=1,
        worker="w1",
        device="cpu",
        pool="cpu",
        model_types=["xgboost"],
        default_models_chosen=False,
        trials_total=4,
    )
    await emit(ctx, tenant, payload, 0)


async def complete(ctx: ApiContext, tenant: str, job_id: str, seq: int = 1) -> None:
    """JobCompleted with a one-row leaderboard."""
    entry = LeaderboardEntry(row=0, family="xgboost", score=0.5, metrics={"rmse": 0.5}, params={})
    payload = JobCompleted(job_id=uuid.UUID(job_id), leaderboard=[entry], duration_s=1.0)
    await emit(ctx, tenant, payload, seq)


def now() -> datetime:
    """UTC now."""
    return datetime.now(UTC)
