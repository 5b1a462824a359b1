"""Event payloads, v1: one frozen model per event, each with a `type` literal."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field, StringConstraints, field_validator, model_validator

from tabstream.schemas._base import Frozen
from tabstream.schemas.checks import REDACTED
from tabstream.schemas.connections import ResolvedSource
from tabstream.schemas.datasets import ColumnInfo, Sha256
from tabstream.schemas.results import (
    ClassLabel,
    EnsembleInfo,
    Feature,
    LeaderboardEntry,
    ParetoPoint,
)
from tabstream.schemas.run import TrainerRunRequest
from tabstream.schemas.tasks import Task
from tabstream.schemas.topics import PoolName

Count = Annotated[int, Field(ge=0)]
Text = Annotated[str, StringConstraints(max_length=65_536)]
FailReason = Literal[
    "invalid_input", "training_error", "crashed", "poison", "timeout", "not_executable"
]


class EventPayload(Frozen):
    """Base of every event payload."""

    SCHEMA_VERSION: ClassVar[int] = 1
    type: str


class DatasetRegistered(EventPayload):
    """A dataset was stored and described.

    v2 adds ``source``: the reference API's connection_config, columns and filter it was read
    with (None for multipart uploads and ``{uri}`` imports; v1 events upcast to None)."""

    SCHEMA_VERSION: ClassVar[int] = 2
    type: Literal["DatasetRegistered"] = "DatasetRegistered"
    dataset_id: UUID
    name: str
    rows: Count
    columns: list[ColumnInfo]
    sha256: Sha256
    uri: str
    created_at: AwareDatetime
    source: ResolvedSource | None = None


class UploadCreated(EventPayload):
    """A signed, expiring, single-use upload URL was handed out."""

    type: Literal["UploadCreated"] = "UploadCreated"
    upload_id: UUID
    file_format: Literal["csv", "parquet"]
    expires_at: AwareDatetime
    created_at: AwareDatetime


class UploadCompleted(EventPayload):
    """Bytes were PUT to an upload URL and stored under ``key`` (the first one folded wins:
    a URL is single-use, a later completion of the same upload is ignored)."""

    type: Literal["UploadCompleted"] = "UploadCompleted"
    upload_id: UUID
    key: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    size_bytes: Count
    sha256: Sha256
    completed_at: AwareDatetime


class PredictRequested(EventPayload):
    """Command: score a whole dataset with a registered model and write Parquet predictions."""

    type: Literal["PredictRequested"] = "PredictRequested"
    job_id: UUID
    model_id: UUID
    model_sha256: Sha256
    source: ResolvedSource
    pool: PoolName
    submitted_at: AwareDatetime


class PredictionsWritten(EventPayload):
    """A prediction job's output was stored (Parquet, one row per input row)."""

    type: Literal["PredictionsWritten"] = "PredictionsWritten"
    job_id: UUID
    model_id: UUID
    uri: str
    rows: Count
    sha256: Sha256


class RunRequested(EventPayload):
    """Command: run a TrainerRun (headers redacted, ciphertext in encrypted_headers).

    v2: the embedded request may carry ``time_budget_s`` (v1 requests upcast without it)."""

    SCHEMA_VERSION: ClassVar[int] = 2
    type: Literal["RunRequested"] = "RunRequested"
    job_id: UUID
    dataset_id: UUID
    request: TrainerRunRequest
    encrypted_headers: str | None = None
    pool: PoolName
    submitted_at: AwareDatetime
    idempotency_key: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    request_digest: Annotated[str, StringConstraints(min_length=1, max_length=256)]

    @field_validator("request")
    @classmethod
    def _redacted(cls, request: TrainerRunRequest) -> TrainerRunRequest:
        headers = request.teacher_predict_headers or {}
        if any(v != REDACTED for v in headers.values()):
            raise ValueError(
                "teacher_predict_headers must be redacted in the log: "
                "publish request.redacted() and the ciphertext in encrypted_headers"
            )
        return request

    @model_validator(mode="after")
    def _ciphertext(self) -> RunRequested:
        if bool(self.request.teacher_predict_headers) != bool(self.encrypted_headers):
            raise ValueError("encrypted_headers must be set exactly when the request has headers")
        if self.dataset_id != self.request.dataset_id:
            raise ValueError("dataset_id must equal request.dataset_id")
        return self


class CancelRequested(EventPayload):
    """Command: cancel a job."""

    type: Literal["CancelRequested"] = "CancelRequested"
    job_id: UUID
    reason: Text | None = None


class JobStarted(EventPayload):
    """A worker started an attempt of a job."""

    type: Literal["JobStarted"] = "JobStarted"
    job_id: UUID
    attempt: int = Field(ge=1)
    worker: str
    device: str
    pool: PoolName
    model_types: list[str]
    default_models_chosen: bool
    trials_total: Count


class TrialCompleted(EventPayload):
    """One HPO trial of one matrix row finished (or failed)."""

    type: Literal["TrialCompleted"] = "TrialCompleted"
    job_id: UUID
    row: Count
    family: str
    weights: list[float] | None = None
    trial: Count
    state: Literal["complete", "failed"]
    params: dict[str, Any]
    fold_metrics: list[dict[str, float]]
    metrics: dict[str, float]
    score: float | None = None
    fit_seconds: float = Field(ge=0)
    predict_seconds: float = Field(ge=0)
    device: str
    error: Text | None = None


class RowCompleted(EventPayload):
    """All trials of one matrix row finished."""

    type: Literal["RowCompleted"] = "RowCompleted"
    job_id: UUID
    row: Count
    family: str
    weights: list[float] | None = None
    best_trial: Count | None = None
    best_params: dict[str, Any]
    best_metrics: dict[str, float]
    score: float | None = None
    n_trials: Count
    n_failed: Count
    error: Text | None = None


class ModelRegistered(EventPayload):
    """A trained model (single or ensemble) was stored."""

    type: Literal["ModelRegistered"] = "ModelRegistered"
    model_id: UUID
    job_id: UUID
    kind: Literal["single", "ensemble"]
    families: list[str]
    uri: str
    sha256: Sha256
    task: Task
    metrics: dict[str, float]
    features: list[Feature]
    classes: list[ClassLabel] | None = None
    created_at: AwareDatetime


class JobCompleted(EventPayload):
    """Terminal: the job finished with a leaderboard."""

    type: Literal["JobCompleted"] = "JobCompleted"
    job_id: UUID
    leaderboard: list[LeaderboardEntry]
    best_model_id: UUID | None = None
    ensemble: EnsembleInfo | None = None
    pareto_front: list[ParetoPoint] | None = None
    duration_s: float = Field(ge=0)
    result_uri: str | None = None
    notes: list[str] = []


class JobFailed(EventPayload):
    """Terminal: the job failed."""

    type: Literal["JobFailed"] = "JobFailed"
    job_id: UUID
    error: Text
    reason: FailReason
    attempt: Count


class JobCancelled(EventPayload):
    """Terminal: the job was cancelled."""

    type: Literal["JobCancelled"] = "JobCancelled"
    job_id: UUID
    reason: Text | None = None


class JobInterrupted(EventPayload):
    """An attempt was lost (crash, rebalance); the job goes on with the next one."""

    type: Literal["JobInterrupted"] = "JobInterrupted"
    job_id: UUID
    lost_attempt: Count
    reason: Text


EVENT_CLASSES: tuple[type[EventPayload], ...] = (
    DatasetRegistered,
    UploadCreated,
    UploadCompleted,
    PredictRequested,
    PredictionsWritten,
    RunRequested,
    CancelRequested,
    JobStarted,
    TrialCompleted,
    RowCompleted,
    ModelRegistered,
    JobCompleted,
    JobFailed,
    JobCancelled,
    JobInterrupted,
)
EVENT_TYPES: dict[str, type[EventPayload]] = {c.__name__: c for c in EVENT_CLASSES}
CURRENT_VERSIONS: dict[str, int] = {name: c.SCHEMA_VERSION for name, c in EVENT_TYPES.items()}
TERMINAL_TYPES = frozenset({"JobCompleted", "JobFailed", "JobCancelled"})
COMMAND_TYPES = frozenset({"RunRequested", "PredictRequested", "CancelRequested"})

Event = Annotated[
    DatasetRegistered
    | UploadCreated
    | UploadCompleted
    | PredictRequested
    | PredictionsWritten
    | RunRequested
    | CancelRequested
    | JobStarted
    | TrialCompleted
    | RowCompleted
    | ModelRegistered
    | JobCompleted
    | JobFailed
    | JobCancelled
    | JobInterrupted,
    Field(discriminator="type"),
]
