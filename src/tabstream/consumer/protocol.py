"""The worker <-> child protocol: a job spec on stdin, JSON lines back on the child's stdout.

Lines the child writes (one JSON object each):
``{"kind": "event", "type": T, "payload": {...}}`` for TrialCompleted, RowCompleted,
ModelRegistered (training) and PredictionsWritten (prediction jobs); then exactly one of
``{"kind": "result", "payload": {...JobCompleted}}``,
``{"kind": "error", "reason": R, "error": "..."}`` or ``{"kind": "cancelled"}``.
The spec carries the decrypted teacher headers, so it travels only over the stdin pipe.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from tabstream.schemas.events import (
    EventPayload,
    JobCompleted,
    ModelRegistered,
    PredictionsWritten,
    RowCompleted,
    TrialCompleted,
)

PROGRESS_TYPES: dict[str, type[EventPayload]] = {
    "TrialCompleted": TrialCompleted,
    "RowCompleted": RowCompleted,
    "ModelRegistered": ModelRegistered,
    "PredictionsWritten": PredictionsWritten,
}
FAIL_REASONS = frozenset({"invalid_input", "training_error", "not_executable", "timeout"})


@dataclass(frozen=True)
class JobSpec:
    """Everything the child needs to run one attempt of one job.

    ``kind`` is ``train`` (``request``: the TrainerRunRequest, teacher headers decrypted) or
    ``predict`` (``request``: the PredictRequested command; ``dataset_id`` is empty and
    ``dataset_key`` the upload's artifact key, if any)."""

    job_id: str
    attempt: int
    dataset_id: str
    dataset_key: str
    request: dict[str, Any]
    device: str
    artifacts_uri: str
    teacher_sha256: str | None = None
    announced_trials: list[list[int]] | None = None
    """From attempt 2 on: [row, trial] of every TrialCompleted already in the log, so the
    attempt announces the trials its journal holds but the log lost (a crash between the two)."""
    kind: Literal["train", "predict"] = "train"

    def to_bytes(self) -> bytes:
        """One JSON line."""
        return json.dumps(self.__dict__).encode() + b"\n"

    @classmethod
    def from_bytes(cls, raw: bytes) -> JobSpec:
        """Parse what ``to_bytes`` wrote."""
        return cls(**json.loads(raw))


@dataclass(frozen=True)
class ChildLine:
    """One parsed protocol line."""

    kind: str
    payload: EventPayload | None = None
    reason: str = "training_error"
    error: str = ""


def event_line(payload: EventPayload) -> bytes:
    """The line for a progress event."""
    body = {"kind": "event", "type": payload.type, "payload": payload.model_dump(mode="json")}
    return json.dumps(body).encode() + b"\n"


def result_line(payload: JobCompleted) -> bytes:
    """The line for the successful result."""
    return (
        json.dumps({"kind": "result", "payload": payload.model_dump(mode="json")}).encode() + b"\n"
    )


def error_line(reason: str, error: str) -> bytes:
    """The line for a failed run."""
    return json.dumps({"kind": "error", "reason": reason, "error": error[:4000]}).encode() + b"\n"


def cancelled_line() -> bytes:
    """The line for a run that stopped on request."""
    return b'{"kind": "cancelled"}\n'


def parse_line(raw: bytes) -> ChildLine:
    """Validate a line; the child may only report progress events and one outcome."""
    data = json.loads(raw)
    kind = data.get("kind")
    if kind == "event":
        cls = PROGRESS_TYPES.get(data.get("type", ""))
        if cls is None:
            raise ValueError(f"child may not emit {data.get('type')!r}")
        return ChildLine("event", cls.model_validate(data["payload"]))
    if kind == "result":
        return ChildLine("result", JobCompleted.model_validate(data["payload"]))
    if kind == "error":
        reason = data.get("reason")
        return ChildLine(
            "error",
            reason=reason if reason in FAIL_REASONS else "training_error",
            error=str(data.get("error", "")),
        )
    if kind == "cancelled":
        return ChildLine("cancelled")
    raise ValueError(f"unknown child line kind {kind!r}")
