"""The projection: fold the event log into queryable job state (DESIGN.md §4 "Projection")."""

from tabstream.projection.fold import ProjectionState, apply, apply_in_place
from tabstream.projection.replay import ReplayItem, rebuild, replay
from tabstream.projection.service import ProjectionService
from tabstream.projection.store import BatchResult, ProjectionStore
from tabstream.schemas.topics import Topics

__all__ = [
    "BatchResult",
    "ProjectionService",
    "ProjectionState",
    "ProjectionStore",
    "ReplayItem",
    "Topics",
    "apply",
    "apply_in_place",
    "rebuild",
    "replay",
]
