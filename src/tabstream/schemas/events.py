"""The event envelope, the Event union and the JSON codec (with upcasting on read)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

from pydantic import (
    AwareDatetime,
    Field,
    StrictInt,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from tabstream.schemas._base import Frozen
from tabstream.schemas.payloads import (
    COMMAND_TYPES,
    CURRENT_VERSIONS,
    EVENT_CLASSES,
    EVENT_TYPES,
    TERMINAL_TYPES,
    CancelRequested,
    DatasetRegistered,
    Event,
    EventPayload,
    FailReason,
    JobCancelled,
    JobCompleted,
    JobFailed,
    JobInterrupted,
    JobStarted,
    ModelRegistered,
    PredictionsWritten,
    PredictRequested,
    RowCompleted,
    RunRequested,
    TrialCompleted,
    UploadCompleted,
    UploadCreated,
)
from tabstream.schemas.upcasters import UpcastError, upcast

__all__ = [
    "COMMAND_TYPES",
    "CURRENT_VERSIONS",
    "EVENT_CLASSES",
    "EVENT_TYPES",
    "TERMINAL_TYPES",
    "CancelRequested",
    "DatasetRegistered",
    "Envelope",
    "Event",
    "EventPayload",
    "FailReason",
    "JobCancelled",
    "JobCompleted",
    "JobFailed",
    "JobInterrupted",
    "JobStarted",
    "ModelRegistered",
    "PredictRequested",
    "PredictionsWritten",
    "Producer",
    "RowCompleted",
    "RunRequested",
    "TrialCompleted",
    "UndecodableEvent",
    "UploadCompleted",
    "UploadCreated",
    "decode",
    "encode",
    "headers",
    "json_schemas",
]

Ident = Annotated[str, StringConstraints(min_length=1, max_length=256)]
MAX_ERROR_CHARS = 2000


class UndecodableEvent(ValueError):
    """A record that is not a valid envelope of a known type and supported version."""


class Producer(Frozen):
    """Who wrote a record: service name and instance id."""

    service: Ident
    instance: Ident


class Envelope(Frozen):
    """The value of every record on the log."""

    event_id: UUID = Field(default_factory=uuid4)
    type: str
    schema_version: StrictInt = Field(ge=0)
    occurred_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    aggregate_id: Ident
    tenant: Ident
    producer: Producer
    attempt: StrictInt = Field(default=0, ge=0)
    seq: StrictInt = Field(default=0, ge=0)
    payload: Event

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _matches_payload(self) -> Envelope:
        if self.type != self.payload.type:
            raise ValueError(f"type {self.type!r} != payload.type {self.payload.type!r}")
        current = type(self.payload).SCHEMA_VERSION
        if self.schema_version != current:
            raise ValueError(f"{self.type} schema_version {self.schema_version} != {current}")
        return self

    @classmethod
    def wrap(
        cls,
        payload: EventPayload,
        *,
        tenant: str,
        producer: Producer,
        aggregate_id: str | None = None,
        attempt: int = 0,
        seq: int = 0,
    ) -> Envelope:
        """Envelope a payload; aggregate_id defaults to its job_id, dataset_id or model_id."""
        return cls.model_validate(
            {
                "type": payload.type,
                "schema_version": type(payload).SCHEMA_VERSION,
                "aggregate_id": aggregate_id or _aggregate_of(payload),
                "tenant": tenant,
                "producer": producer,
                "attempt": attempt,
                "seq": seq,
                "payload": payload,
            }
        )


def _aggregate_of(payload: EventPayload) -> str:
    for name in ("job_id", "dataset_id", "upload_id", "model_id"):
        value = getattr(payload, name, None)
        if value is not None:
            return str(value)
    raise ValueError(f"{payload.type} has no aggregate id; pass aggregate_id")


def encode(env: Envelope) -> bytes:
    """Compact UTF-8 JSON of an envelope (``model_dump_json``'s text, without a str between)."""
    return env.__pydantic_serializer__.to_json(env)


def headers(env: Envelope) -> tuple[tuple[str, bytes], ...]:
    """Record headers for cheap routing: type, schema_version, tenant."""
    return (
        ("type", env.type.encode()),
        ("schema_version", str(env.schema_version).encode()),
        ("tenant", env.tenant.encode()),
    )


def decode(raw: bytes) -> Envelope:
    """Parse a record value; upcast old versions; raise UndecodableEvent on anything else."""
    try:
        return _validate_json(raw)  # Envelope.model_validate_json, minus a Python frame
    except ValidationError as error:
        return _decode_slow(raw, error)


_validate_json: Callable[[bytes], Envelope] = Envelope.__pydantic_validator__.validate_json


def _decode_slow(raw: bytes, error: ValidationError) -> Envelope:
    try:
        data: Any = json.loads(raw)
    except ValueError as exc:
        raise UndecodableEvent(f"record is not UTF-8 JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UndecodableEvent("record is not a JSON object")
    event_type, version = data.get("type"), data.get("schema_version")
    current = CURRENT_VERSIONS.get(event_type) if isinstance(event_type, str) else None
    if current is None:
        raise UndecodableEvent(f"unknown event type {str(event_type)[:100]!r}")
    if type(version) is not int:
        raise UndecodableEvent(f"{event_type}: schema_version must be an integer")
    if version > current:
        raise UndecodableEvent(f"{event_type} v{version} is newer than supported v{current}")
    if version == current:
        raise UndecodableEvent(_short(f"invalid {event_type} v{version}: {error}"))
    try:
        return Envelope.model_validate(upcast(data))
    except (UpcastError, ValidationError) as exc:
        raise UndecodableEvent(_short(f"cannot upcast {event_type} v{version}: {exc}")) from None


def _short(message: str) -> str:
    return message if len(message) <= MAX_ERROR_CHARS else message[:MAX_ERROR_CHARS] + "..."


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schemas of the envelope (key "Envelope") and of each event (key = type)."""
    out = {"Envelope": Envelope.model_json_schema()}
    out.update({name: cls.model_json_schema() for name, cls in sorted(EVENT_TYPES.items())})
    return out
