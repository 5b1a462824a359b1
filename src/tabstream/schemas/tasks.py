"""Task kinds of a TrainerRun: a discriminated union on `task_kind`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from tabstream.schemas._base import Frozen, field_error

Column = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class _Labelled(Frozen):
    label_column: Column


class _Sequential(_Labelled):
    id_column: Column
    timestamp_column: Column

    @model_validator(mode="after")
    def _distinct_columns(self) -> _Sequential:
        cols = [self.label_column, self.id_column, self.timestamp_column]
        if len(set(cols)) != len(cols):
            field = "id_column" if self.id_column in cols[::2] else "timestamp_column"
            message = f"task columns must be distinct, got {cols}"
            raise field_error(type(self).__name__, field, message)
        return self


class RegressionTask(_Labelled):
    """Predict a continuous target."""

    task_kind: Literal["regression"] = "regression"


class BinclassTask(_Labelled):
    """Predict one of two classes."""

    task_kind: Literal["binclass"] = "binclass"


class MulticlassTask(_Labelled):
    """Predict one of several classes."""

    task_kind: Literal["multiclass"] = "multiclass"


class ForecastingTask(_Sequential):
    """Forecast `horizon` steps of each series identified by `id_column`."""

    task_kind: Literal["forecasting"] = "forecasting"
    horizon: int = Field(ge=1, le=100_000)
    lookback: int | None = Field(default=None, ge=1, le=100_000)


class SequenceRegressionTask(_Sequential):
    """Regress a target from a time-ordered sequence per id."""

    task_kind: Literal["sequence_regression"] = "sequence_regression"


class SequenceBinclassTask(_Sequential):
    """Binary classification of time-ordered sequences per id."""

    task_kind: Literal["sequence_binclass"] = "sequence_binclass"


class SequenceMulticlassTask(_Sequential):
    """Multiclass classification of time-ordered sequences per id."""

    task_kind: Literal["sequence_multiclass"] = "sequence_multiclass"


Task = Annotated[
    RegressionTask
    | BinclassTask
    | MulticlassTask
    | ForecastingTask
    | SequenceRegressionTask
    | SequenceBinclassTask
    | SequenceMulticlassTask,
    Field(discriminator="task_kind"),
]

TaskKind = Literal[
    "regression",
    "binclass",
    "multiclass",
    "forecasting",
    "sequence_regression",
    "sequence_binclass",
    "sequence_multiclass",
]

CLASSIFICATION_KINDS = frozenset(
    {"binclass", "multiclass", "sequence_binclass", "sequence_multiclass"}
)


def is_classification(task: Task) -> bool:
    """True when the task predicts classes."""
    return task.task_kind in CLASSIFICATION_KINDS


def task_columns(task: Task) -> list[str]:
    """The dataset columns the task reads: label first, then id and timestamp if any."""
    cols = [task.label_column]
    if isinstance(task, _Sequential):
        cols += [task.id_column, task.timestamp_column]
    return cols
