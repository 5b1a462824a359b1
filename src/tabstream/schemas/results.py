"""Result shapes carried by ModelRegistered and JobCompleted."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import Field

from tabstream.schemas._base import Frozen

ClassLabel = bool | int | float | str


class Feature(Frozen):
    """One model input feature: name and Arrow type string."""

    name: str
    type: str


class LeaderboardEntry(Frozen):
    """One matrix row's best result."""

    row: int = Field(ge=0)
    family: str
    weights: list[float] | None = None
    score: float | None = None
    metrics: dict[str, float]
    params: dict[str, Any]
    model_id: UUID | None = None


class EnsembleMember(Frozen):
    """One Caruana ensemble member and its weight."""

    row: int = Field(ge=0)
    family: str
    trial: int = Field(ge=0)
    weight: float = Field(ge=0)


class EnsembleInfo(Frozen):
    """The Caruana ensemble of a job and its out-of-fold metrics."""

    members: list[EnsembleMember]
    metrics: dict[str, float]


class ParetoPoint(Frozen):
    """One non-dominated point of a multi-metric sweep."""

    row: int = Field(ge=0)
    family: str
    weights: list[float] | None = None
    metrics: dict[str, float]
    model_id: UUID | None = None
