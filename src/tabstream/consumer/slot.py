"""One slot: a consumer-group member that runs one job at a time."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from tabstream.adapters.bus.port import Record, TopicPartition
from tabstream.common.logs import get_logger
from tabstream.consumer.commands import PoisonCommand, dead_letter, parse_command
from tabstream.consumer.emitter import commit_with, envelope_record
from tabstream.consumer.runner import JobContext, run_attempt
from tabstream.schemas.events import Envelope, JobCancelled

_log = get_logger(__name__)
POLL_MS = 200


class Slot:
    """Polls ``max_records=1``; while a job runs its partitions stay paused and it keeps polling
    (so the member stays in the group); commits only through the terminal transaction."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.jobs_done = 0

    async def run(self) -> None:
        """Take commands until the worker shuts down, then leave the group."""
        consumer = self.ctx.consumer
        await consumer.start()
        assigned: frozenset[TopicPartition] = frozenset()
        try:
            while not self.ctx.shutdown.is_set():
                records = await consumer.poll(timeout_ms=POLL_MS, max_records=1)
                if consumer.assignment() != assigned:
                    assigned = consumer.assignment()
                    parts = sorted(tp.partition for tp in assigned)
                    _log.info("assignment", slot=self.ctx.producer.instance, partitions=parts)
                for record in records:
                    await self._handle(record)
                    break
        finally:
            await consumer.stop()

    async def _handle(self, record: Record) -> None:
        where = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
        with structlog.contextvars.bound_contextvars(**where):
            await self._handle_bound(record)

    async def _handle_bound(self, record: Record) -> None:
        consumer = self.ctx.consumer
        consumer.pause(*consumer.assignment())
        keepalive = asyncio.create_task(self._keep_polling(record))
        done = False
        try:
            done = await self._process(record)
        except Exception:
            _log.exception("command handling failed; it will be redelivered", offset=record.offset)
        finally:
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive
        if self.ctx.shutdown.is_set():
            return
        if not done:
            await consumer.seek_to_committed(record.tp)
        else:
            self.jobs_done += 1
        consumer.resume(*consumer.assignment())

    async def _keep_polling(self, current: Record) -> None:
        """Poll while busy: heartbeats and ``max_poll_interval`` stay satisfied. Whatever a
        rebalance un-paused is rewound to its committed offset and paused again."""
        consumer = self.ctx.consumer
        while True:
            consumer.pause(*consumer.assignment())
            for record in await consumer.poll(timeout_ms=POLL_MS, max_records=1):
                await consumer.seek_to_committed(record.tp)
                consumer.pause(record.tp)

    async def _process(self, record: Record) -> bool:
        ctx = self.ctx
        try:
            cmd = parse_command(record)
        except PoisonCommand as exc:
            _log.warning("poison command: dead-lettered", offset=record.offset, error=str(exc))
            await dead_letter(
                ctx.consumer,
                record,
                dlq_topic=ctx.topics.dlq,
                events_topic=ctx.topics.events,
                producer=ctx.producer,
                error=f"undecodable command: {exc}",
                reason="poison",
            )
            return True
        hist = await ctx.ledger.sync(cmd.job_id)
        if hist.terminal is not None:
            _log.info("job already ended; skipping its command", job_id=cmd.job_id)
            await ctx.consumer.commit({record.tp: record.offset + 1})
            return True
        await ctx.cancels.sync()
        if cmd.job_id in ctx.cancels.cancelled:
            cancelled = JobCancelled(job_id=cmd.job_uuid, reason="cancelled before it started")
            env = Envelope.wrap(cancelled, tenant=cmd.tenant, producer=ctx.producer)
            await commit_with(ctx.consumer, record, [envelope_record(ctx.topics.events, env)])
            return True
        if hist.attempts >= ctx.config.max_attempts:
            error = (
                f"job crashed in {hist.attempts} attempts (TABSTREAM_MAX_ATTEMPTS="
                f"{ctx.config.max_attempts}); its command was moved to {ctx.topics.dlq}"
            )
            await dead_letter(
                ctx.consumer,
                record,
                dlq_topic=ctx.topics.dlq,
                events_topic=ctx.topics.events,
                producer=ctx.producer,
                error=error,
                reason="crashed",
                attempts=hist.attempts,
                tenant=cmd.tenant,
                lost_attempt=hist.open_attempt,
            )
            return True
        return await run_attempt(ctx, record, cmd, hist)
