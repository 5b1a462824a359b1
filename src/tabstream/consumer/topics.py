"""Topic and group names a worker uses, with a prefix (tests and side-by-side deployments)."""

from __future__ import annotations

from dataclasses import dataclass

from tabstream.schemas.topics import DEFAULT_PARTITIONS, validate_pool


@dataclass(frozen=True)
class WorkerTopics:
    """``<prefix>.commands.<pool>`` (+ ``.dlq``), ``<prefix>.events``, ``<prefix>.control`` and
    the group ``tabstream-workers.<pool>`` (``<prefix>-workers.<pool>`` for another prefix)."""

    prefix: str = "tabstream"
    pool: str = "cpu"

    def __post_init__(self) -> None:
        validate_pool(self.pool)

    @property
    def commands(self) -> str:
        return f"{self.prefix}.commands.{self.pool}"

    @property
    def dlq(self) -> str:
        return f"{self.commands}.dlq"

    @property
    def events(self) -> str:
        return f"{self.prefix}.events"

    @property
    def control(self) -> str:
        return f"{self.prefix}.control"

    @property
    def group(self) -> str:
        return f"{self.prefix}-workers.{self.pool}"

    def partition_counts(self) -> dict[str, int]:
        """Default partition counts of every topic the worker touches (for ``create_topics``)."""
        return {
            self.commands: DEFAULT_PARTITIONS["commands"],
            self.dlq: DEFAULT_PARTITIONS["dlq"],
            self.events: DEFAULT_PARTITIONS["events"],
            self.control: DEFAULT_PARTITIONS["control"],
        }
