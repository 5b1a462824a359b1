"""TrainerRun request and responses, exactly as the seed REST contract."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tabstream.schemas._base import Frozen, field_error
from tabstream.schemas.checks import (
    METRICS,
    MODEL_TYPES,
    REDACTED,
    check_grid_size,
    check_headers,
    check_metrics,
    check_model_types,
    check_url,
)
from tabstream.schemas.filters import Filter, check_filter_depth
from tabstream.schemas.tasks import Task

__all__ = [
    "METRICS",
    "MODEL_TYPES",
    "JobResultResponse",
    "JobStatus",
    "TrainerRunRequest",
    "TrainerRunResponse",
]

JobStatus = Literal["pending", "running", "completed", "failed", "cancelled"]
MAX_TIME_BUDGET_S = 7 * 24 * 3600.0


class TrainerRunRequest(Frozen):
    """POST /v1/trainer/run body: configure a Trainer and run HPO across a model matrix."""

    model_config = ConfigDict(**Frozen.model_config, hide_input_in_errors=True)

    dataset_id: UUID
    filter: Filter | None = None
    task: Task
    model_types: list[str] | None = None
    metrics: list[str] | None = None
    strategy: Literal["optuna", "random"] = "optuna"
    n_trials: int = Field(default=4, ge=1, le=1000)
    n_splits: int | None = Field(default=None, ge=2, le=20)
    ensemble: bool = False
    grid_size: float | None = None
    teacher_model_id: UUID | None = None
    teacher_predict_url: str | None = None
    teacher_predict_headers: dict[str, str] | None = None
    random_state: int = 42
    time_budget_s: float | None = Field(
        default=None,
        gt=0,
        le=MAX_TIME_BUDGET_S,
        description=(
            "tabstream extension (not in the reference API): the wall-clock seconds the whole "
            "job may take, at most 7 days. The search stops starting trials when the next "
            "would not fit, so n_trials becomes an upper bound; the finish (refit or ensemble) "
            "runs in a reserved share of it. Omitted: no time limit."
        ),
    )

    _check_filter_depth = field_validator("filter", mode="before")(check_filter_depth)
    _check_model_types = field_validator("model_types")(check_model_types)
    _check_grid_size = field_validator("grid_size")(check_grid_size)
    _check_url = field_validator("teacher_predict_url")(check_url)
    _check_headers = field_validator("teacher_predict_headers")(check_headers)

    @model_validator(mode="after")
    def _cross_field(self) -> TrainerRunRequest:
        name = type(self).__name__
        if self.teacher_model_id is not None and self.teacher_predict_url is not None:
            raise field_error(
                name,
                "teacher_predict_url",
                "teacher_model_id and teacher_predict_url are mutually exclusive: set one",
            )
        if self.teacher_predict_headers and self.teacher_predict_url is None:
            raise field_error(
                name,
                "teacher_predict_headers",
                "teacher_predict_headers requires teacher_predict_url",
            )
        try:
            check_metrics(self.metrics, self.task.task_kind)
        except ValueError as exc:
            raise field_error(name, "metrics", str(exc)) from None
        return self

    def redacted(self) -> TrainerRunRequest:
        """A copy whose teacher_predict_headers values are replaced by "***"."""
        if not self.teacher_predict_headers:
            return self
        hidden = {k: REDACTED for k in self.teacher_predict_headers}
        return self.model_copy(update={"teacher_predict_headers": hidden})

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            if name == "teacher_predict_headers" and value:
                yield name, {k: REDACTED for k in value}
            else:
                yield name, value


class TrainerRunResponse(BaseModel):
    """POST /v1/trainer/run response: the submitted job."""

    model_config = Frozen.model_config
    job_id: UUID
    status: JobStatus
    message: str
    dataset_id: UUID


class JobResultResponse(BaseModel):
    """GET /v1/jobs/{id}/result: the outcome of a job."""

    model_config = Frozen.model_config
    job_id: UUID
    status: JobStatus
    result_data: dict[str, Any] | None = None
    result_uri: str | None = None
    error_message: str | None = None
    completed_at: datetime | None = None
