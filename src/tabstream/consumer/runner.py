"""One attempt of one job: JobStarted, the child, forwarded events, the terminal transaction."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from tabstream.adapters.bus.port import EventLog, GroupConsumer, Record
from tabstream.common.logs import get_logger
from tabstream.consumer.commands import Command
from tabstream.consumer.config import Decrypt, WorkerConfig, trials_total
from tabstream.consumer.emitter import JobEmitter
from tabstream.consumer.ledger import CancelWatch, JobHistory, JobLedger
from tabstream.consumer.protocol import JobSpec
from tabstream.consumer.supervisor import ChildOutcome, run_child
from tabstream.consumer.worker_topics import WorkerTopics
from tabstream.schemas.events import (
    EventPayload,
    JobCancelled,
    JobFailed,
    JobInterrupted,
    JobStarted,
    PredictRequested,
    Producer,
)

_log = get_logger(__name__)


@dataclass
class Stop:
    """Why the worker stopped a running child (first reason wins)."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    why: str = ""

    def set(self, why: str) -> None:
        if not self.event.is_set():
            self.why = why
            self.event.set()


@dataclass
class JobContext:
    """What a slot hands to ``run_attempt``."""

    log: EventLog
    consumer: GroupConsumer
    config: WorkerConfig
    topics: WorkerTopics
    ledger: JobLedger
    cancels: CancelWatch
    producer: Producer
    decrypt: Decrypt | None
    shutdown: asyncio.Event


async def run_attempt(ctx: JobContext, record: Record, cmd: Command, hist: JobHistory) -> bool:
    """Run the next attempt; True when the command is done (terminal event committed)."""
    attempt = hist.attempts + 1
    emitter = JobEmitter(
        ctx.log,
        ctx.topics.events,
        job_id=cmd.job_id,
        tenant=cmd.tenant,
        producer=ctx.producer,
        attempt=attempt,
    )
    if hist.open_attempt is not None:
        reason = "attempt lost: its worker or training process stopped without an outcome"
        await emitter.emit(
            JobInterrupted(job_id=cmd.job_uuid, lost_attempt=hist.open_attempt, reason=reason)
        )
    await emitter.emit(_started(ctx, cmd, attempt))
    try:
        spec = _spec(ctx, cmd, attempt, hist)
    except ValueError as exc:
        failed = JobFailed(
            job_id=cmd.job_uuid, error=str(exc), reason="invalid_input", attempt=attempt
        )
        await emitter.finish(ctx.consumer, record, [failed])
        return True
    outcome, why = await _supervise(ctx, cmd, spec, emitter)
    return await _conclude(ctx, record, cmd, emitter, outcome, why)


def _started(ctx: JobContext, cmd: Command, attempt: int) -> JobStarted:
    if cmd.predict is not None:  # no trials; the model's families when it is the tenant's
        model_id = str(cmd.predict.model_id)
        registered = ctx.ledger.model(model_id)
        ours = registered is not None and registered[0] == cmd.tenant
        model_types = ctx.ledger.model_families(model_id) if ours else []
        chosen, total = False, 0
    else:
        request = cmd.run.request
        model_types = list(request.model_types or [])
        chosen, total = request.model_types is None, trials_total(request)
    return JobStarted(
        job_id=cmd.job_uuid,
        attempt=attempt,
        worker=ctx.producer.instance,
        device=ctx.config.device_label,
        pool=ctx.config.pool,
        model_types=model_types,
        default_models_chosen=chosen,
        trials_total=total,
    )


def _spec(ctx: JobContext, cmd: Command, attempt: int, hist: JobHistory) -> JobSpec:
    if cmd.predict is not None:
        return _predict_spec(ctx, cmd, cmd.predict, attempt)
    request = cmd.run.request.model_dump(mode="json")
    if cmd.run.encrypted_headers:
        if ctx.decrypt is None:
            raise ValueError("teacher headers are encrypted but this worker has no server key")
        request["teacher_predict_headers"] = ctx.decrypt(cmd.run.encrypted_headers)
    return JobSpec(
        teacher_sha256=_teacher_digest(ctx, cmd),
        job_id=cmd.job_id,
        attempt=attempt,
        dataset_id=str(cmd.run.dataset_id),
        dataset_key=f"datasets/{cmd.run.dataset_id}/data.parquet",
        request=request,
        device=ctx.config.device,
        artifacts_uri=ctx.config.artifacts_uri,
        announced_trials=[list(t) for t in sorted(hist.announced)] if attempt > 1 else None,
    )


def _predict_spec(
    ctx: JobContext, cmd: Command, predict: PredictRequested, attempt: int
) -> JobSpec:
    """The spec of a prediction job; ValueError when the model is not one the log registered
    for this tenant (another tenant's is refused alike, never confirmed) or its bundle changed
    since the request."""
    model_id = str(predict.model_id)
    registered = ctx.ledger.model(model_id)
    if registered is None or registered[0] != cmd.tenant:
        raise ValueError(f"model {model_id} is not a registered model of this tenant")
    if registered[1] != predict.model_sha256:
        raise ValueError(f"model {model_id} does not match the sha256 the request recorded")
    return JobSpec(
        job_id=cmd.job_id,
        attempt=attempt,
        dataset_id="",
        dataset_key=predict.source.upload_key or "",
        request=predict.model_dump(mode="json"),
        device=ctx.config.device,
        artifacts_uri=ctx.config.artifacts_uri,
        kind="predict",
    )


def _teacher_digest(ctx: JobContext, cmd: Command) -> str | None:
    """The sha256 the log recorded for the tenant's teacher model (the child verifies the
    bundle against it); a teacher unknown to the log or another tenant's is refused."""
    teacher = cmd.run.request.teacher_model_id
    if teacher is None:
        return None
    registered = ctx.ledger.model(str(teacher))
    if registered is None or registered[0] != cmd.tenant:
        raise ValueError(f"teacher model {teacher} is not a registered model of this tenant")
    return registered[1]


async def _supervise(
    ctx: JobContext, cmd: Command, spec: JobSpec, emitter: JobEmitter
) -> tuple[ChildOutcome, str]:
    stop = Stop()
    loop = asyncio.get_running_loop()
    unsubscribe = ctx.cancels.on_cancel(cmd.job_id, lambda: stop.set("cancel"))
    timer = None
    if ctx.config.job_timeout_s is not None:
        timer = loop.call_later(ctx.config.job_timeout_s, stop.set, "timeout")
    watcher = asyncio.create_task(_watch_shutdown(ctx.shutdown, stop))

    async def forward(payload: EventPayload) -> None:
        await emitter.emit(payload)

    try:
        outcome = await run_child(
            ctx.config.child_argv,
            ctx.config.env_for_child(),
            spec.to_bytes(),
            forward,
            stop.event,
            ctx.config.kill_grace_s,
        )
    finally:
        unsubscribe()
        watcher.cancel()
        if timer is not None:
            timer.cancel()
    return outcome, stop.why


async def _watch_shutdown(shutdown: asyncio.Event, stop: Stop) -> None:
    await shutdown.wait()
    stop.set("shutdown")


async def _conclude(
    ctx: JobContext,
    record: Record,
    cmd: Command,
    emitter: JobEmitter,
    outcome: ChildOutcome,
    why: str,
) -> bool:
    job_id, attempt = cmd.job_uuid, emitter.attempt
    _log.info("attempt ended", job_id=cmd.job_id, attempt=attempt, outcome=outcome.kind, why=why)
    if outcome.kind == "stopped" and why == "shutdown":
        await emitter.emit(
            JobInterrupted(job_id=job_id, lost_attempt=attempt, reason="worker shut down")
        )
        return False
    if outcome.kind == "crashed":
        await emitter.emit(
            JobInterrupted(job_id=job_id, lost_attempt=attempt, reason=outcome.error)
        )
        return False
    if not await _still_ours(ctx, cmd, attempt):
        return False
    terminal: EventPayload
    if outcome.kind == "result" and outcome.result is not None:
        terminal = outcome.result
    elif why == "timeout":
        limit = ctx.config.job_timeout_s
        terminal = JobFailed(
            job_id=job_id,
            error=f"job exceeded its {limit:g} s time limit",
            reason="timeout",
            attempt=attempt,
        )
    elif outcome.kind in ("stopped", "cancelled"):
        terminal = JobCancelled(job_id=job_id, reason="cancelled while running")
    else:
        terminal = JobFailed(
            job_id=job_id, error=outcome.error, reason=outcome.reason, attempt=attempt
        )
    await emitter.finish(ctx.consumer, record, [terminal])
    return True


async def _still_ours(ctx: JobContext, cmd: Command, attempt: int) -> bool:
    """False when another member started a later attempt or ended the job (we were fenced
    out by a rebalance): then this attempt publishes no terminal event."""
    hist = await ctx.ledger.sync(cmd.job_id)
    if hist.terminal is not None or hist.attempts > attempt:
        _log.warning("job moved on without this attempt; dropping its outcome", job_id=cmd.job_id)
        return False
    return True
