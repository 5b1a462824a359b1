"""The names one worker pool uses, as a view over the deployment's ``Topics``."""

from __future__ import annotations

from dataclasses import dataclass

from tabstream.schemas.topics import Topics, validate_pool


@dataclass(frozen=True)
class WorkerTopics:
    """``Topics(prefix)`` narrowed to one pool: its commands, DLQ and group, plus the shared
    events and control topics."""

    prefix: str = "tabstream"
    pool: str = "cpu"

    def __post_init__(self) -> None:
        validate_pool(self.pool)

    @property
    def all(self) -> Topics:
        return Topics(self.prefix)

    @property
    def commands(self) -> str:
        return self.all.commands(self.pool)

    @property
    def dlq(self) -> str:
        return self.all.dlq(self.pool)

    @property
    def events(self) -> str:
        return self.all.events

    @property
    def control(self) -> str:
        return self.all.control

    @property
    def group(self) -> str:
        return self.all.group(self.pool)

    def partition_counts(self) -> dict[str, int]:
        """Default partition counts of every topic the worker touches (for ``create_topics``)."""
        return self.all.partition_counts([self.pool])
