"""Decisions about one command record before anything runs: decode, dead-letter, skip."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tabstream.adapters.bus.port import GroupConsumer, OutgoingRecord, Record
from tabstream.consumer.emitter import commit_with, envelope_record
from tabstream.schemas.events import (
    Envelope,
    EventPayload,
    JobFailed,
    JobInterrupted,
    PredictRequested,
    Producer,
    RunRequested,
    UndecodableEvent,
    decode,
)


@dataclass(frozen=True)
class Command:
    """A decoded job command (RunRequested: train; PredictRequested: score a dataset) with its
    envelope."""

    envelope: Envelope
    payload: RunRequested | PredictRequested

    @property
    def job_id(self) -> str:
        return str(self.payload.job_id)

    @property
    def job_uuid(self) -> uuid.UUID:
        """The job id as a UUID (for event payloads)."""
        return self.payload.job_id

    @property
    def run(self) -> RunRequested:
        """The training command (TypeError for a prediction job)."""
        if not isinstance(self.payload, RunRequested):
            raise TypeError(f"job {self.job_id} is a prediction job, not a training run")
        return self.payload

    @property
    def predict(self) -> PredictRequested | None:
        """The prediction command, None for a training run."""
        return self.payload if isinstance(self.payload, PredictRequested) else None

    @property
    def tenant(self) -> str:
        return self.envelope.tenant


class PoisonCommand(ValueError):
    """A command record that can never run (undecodable, unknown version, not a job command)."""


def parse_command(record: Record) -> Command:
    """Decode a command record; ``PoisonCommand`` with a clear message when impossible."""
    try:
        env = decode(record.value)
    except UndecodableEvent as exc:
        raise PoisonCommand(str(exc)) from None
    if not isinstance(env.payload, RunRequested | PredictRequested):
        raise PoisonCommand(
            f"expected RunRequested or PredictRequested on a command topic, got {env.type}"
        )
    return Command(env, env.payload)


def dlq_record(dlq_topic: str, record: Record, error: str, attempts: int) -> OutgoingRecord:
    """The original record for the dead-letter topic, the error and origin in its headers."""
    extra = (
        ("error", error[:4000].encode()),
        ("attempts", str(attempts).encode()),
        ("original_topic", record.topic.encode()),
        ("original_partition", str(record.partition).encode()),
        ("original_offset", str(record.offset).encode()),
    )
    return OutgoingRecord(dlq_topic, record.key or "", record.value, (*record.headers, *extra))


def job_id_of(record: Record) -> uuid.UUID | None:
    """The record key when it is a job id."""
    try:
        return uuid.UUID(record.key or "")
    except ValueError:
        return None


def tenant_of(record: Record) -> str:
    """The tenant header of a record we cannot decode ("unknown" when absent)."""
    raw = record.header("tenant")
    try:
        return raw.decode() if raw else "unknown"
    except UnicodeDecodeError:
        return "unknown"


async def dead_letter(
    consumer: GroupConsumer,
    record: Record,
    *,
    dlq_topic: str,
    events_topic: str,
    producer: Producer,
    error: str,
    reason: str,
    attempts: int = 0,
    tenant: str | None = None,
    lost_attempt: int | None = None,
) -> None:
    """DLQ the record, fail its job (when it names one) and commit past it: one transaction."""
    records = [dlq_record(dlq_topic, record, error, attempts)]
    job_id = job_id_of(record)
    if job_id is not None:
        payloads: list[EventPayload] = []
        if lost_attempt is not None:
            payloads.append(
                JobInterrupted(job_id=job_id, lost_attempt=lost_attempt, reason="attempt lost")
            )
        payloads.append(JobFailed(job_id=job_id, error=error, reason=reason, attempt=attempts))
        who = tenant or tenant_of(record)
        for payload in payloads:
            env = Envelope.wrap(payload, tenant=who, producer=producer, aggregate_id=str(job_id))
            records.append(envelope_record(events_topic, env))
    await commit_with(consumer, record, records)
