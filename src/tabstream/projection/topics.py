"""Topic names built from a prefix, so tests and side-by-side deployments can isolate them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tabstream.schemas.topics import DEFAULT_PARTITIONS, validate_pool


@dataclass(frozen=True)
class Topics:
    """``<prefix>.events``, ``<prefix>.control``, ``<prefix>.commands.<pool>`` (default prefix
    "tabstream", which gives the names of DESIGN.md §3)."""

    prefix: str = "tabstream"

    @property
    def events(self) -> str:
        """Worker events and registrations."""
        return f"{self.prefix}.events"

    @property
    def control(self) -> str:
        """Cancellation commands (read by every worker, no group)."""
        return f"{self.prefix}.control"

    def commands(self, pool: str) -> str:
        """The command topic of a worker pool."""
        return f"{self.prefix}.commands.{validate_pool(pool)}"

    def dlq(self, pool: str) -> str:
        """The dead-letter topic of a pool."""
        return f"{self.commands(pool)}.dlq"

    def projection_topics(self, pools: Iterable[str]) -> list[str]:
        """Every topic the projection folds: each pool's commands, control, then events (a
        rebuild reading in this order meets a job's RunRequested before its worker events)."""
        return [*(self.commands(p) for p in sorted(set(pools))), self.control, self.events]

    def partition_counts(self, pools: Iterable[str]) -> dict[str, int]:
        """Default partition counts of the projection's topics (for ``create_topics``)."""
        counts = {self.events: DEFAULT_PARTITIONS["events"]}
        counts[self.control] = DEFAULT_PARTITIONS["control"]
        for pool in sorted(set(pools)):
            counts[self.commands(pool)] = DEFAULT_PARTITIONS["commands"]
        return counts
