"""Response shapes of the query routes, built from the read model's rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, ValidationError

from tabstream.producer_api.readmodel import Row
from tabstream.schemas import DatasetInfo, JobStatus


class DatasetOut(DatasetInfo):
    """A dataset: tabstream's fields (dataset_id, name, rows, columns with types and null
    counts, sha256) and the reference API's (id, connection_config, filter, updated_at)."""

    id: UUID = Field(description="the dataset's id (the reference API's name for dataset_id)")
    connection_config: dict[str, Any] = Field(
        description="where the data was read from (s3 or file_upload)"
    )
    filter: dict[str, Any] | None = Field(default=None, description="rows kept at registration")
    updated_at: datetime = Field(description="datasets never change: created_at")


class DatasetPage(BaseModel):
    """A page of datasets."""

    items: list[DatasetOut]
    next_cursor: str | None = None


class JobOut(BaseModel):
    """A job as the projection knows it (the request echo has its secrets redacted)."""

    job_id: UUID
    status: JobStatus
    dataset_id: UUID | None = None
    pool: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: dict[str, Any] | None = None
    model_types: list[str] | None = None
    default_models_chosen: bool | None = None
    attempts: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    request: dict[str, Any] | None = None
    leaderboard: list[dict[str, Any]] | None = None
    best_model_id: UUID | None = None
    ensemble: dict[str, Any] | None = None
    pareto_front: list[dict[str, Any]] | None = None
    result_uri: str | None = None
    duration_s: float | None = None
    notes: list[str] = []
    models: list[Any] = []
    error: Any = None
    cancel_requested: bool = False
    cancel_reason: str | None = None
    kind: Literal["train", "predict"] = "train"
    predictions: dict[str, Any] | None = None
    extra: dict[str, Any] | None = None


class JobPage(BaseModel):
    """A page of jobs."""

    items: list[JobOut]
    next_cursor: str | None = None


class TrialPage(BaseModel):
    """GET /v1/jobs/{id}/trials: every trial of a job, by row then trial."""

    job_id: UUID
    items: list[dict[str, Any]]


class ModelPage(BaseModel):
    """A page of models."""

    items: list[dict[str, Any]]
    next_cursor: str | None = None


class CancelResponse(BaseModel):
    """POST /v1/jobs/{id}/cancel response."""

    job_id: UUID
    status: JobStatus
    message: str


Report = Callable[[str, str, str], None]
"""``report(kind, id, error)``: a row the log holds that the API cannot show as it is."""
MAX_TEXT = 256


def dataset_out(row: Row, report: Report) -> DatasetOut | None:
    """A DatasetOut from a read-model row (``uri`` is not shown).

    The read side is total: a row that fails today's checks (an event written before them) is
    reported and shown degraded (over-long texts cut, an empty name replaced); a row that is
    still not showable then is reported and left out (None), never a 500 for every read.
    """
    data = {k: v for k, v in row.items() if k in DatasetInfo.model_fields}
    try:
        return with_reference_fields(DatasetInfo.model_validate(data), row.get("source"))
    except ValidationError as exc:
        report("dataset", str(row.get("dataset_id")), str(exc)[:500])
    try:
        info = DatasetInfo.model_validate(_degraded_dataset(data))
        return with_reference_fields(info, row.get("source"))
    except ValidationError:
        return None


def with_reference_fields(info: DatasetInfo, source: Any) -> DatasetOut:
    """``info`` with the reference API's fields; a dataset registered without a
    connection_config (multipart upload, ``{uri}`` import) shows its stored file as a
    completed ``file_upload``."""
    source = source if isinstance(source, dict) else {}
    config = source.get("connection_config") or {
        "connector_type": "file_upload",
        "uri": f"datasets/{info.dataset_id}/data.parquet",
        "id": str(info.dataset_id),
        "state": "completed",
    }
    return DatasetOut(
        **info.model_dump(),
        id=info.dataset_id,
        connection_config=config,
        filter=source.get("filter"),
        updated_at=info.created_at,
    )


def _degraded_dataset(data: dict[str, Any]) -> dict[str, Any]:
    columns = [
        {**c, "name": _text(c.get("name")) or "?", "type": _text(c.get("type")) or "?"}
        if isinstance(c, dict)
        else c
        for c in data.get("columns") or []
    ]
    return {**data, "name": _text(data.get("name")) or "dataset", "columns": columns}


def _text(value: Any) -> str:
    text = str(value) if value is not None else ""
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def job_out(row: Row) -> JobOut:
    """A JobOut from a read-model row; unknown keys are kept under ``extra``."""
    known = JobOut.model_fields
    data = {k: v for k, v in row.items() if k in known and k != "extra"}
    extra = {k: v for k, v in row.items() if k not in known and k not in _HIDDEN}
    return JobOut.model_validate({**data, "extra": extra or None})


_HIDDEN = frozenset({"tenant", "encrypted_headers", "request_digest", "idempotency_key"})
