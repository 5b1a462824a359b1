"""Topic and consumer-group names."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator

EVENTS = "tabstream.events"
CONTROL = "tabstream.control"
DEFAULT_POOLS = ("cpu",)
DEFAULT_PARTITIONS = {"commands": 8, "events": 8, "control": 1, "dlq": 1}
_POOL = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


def validate_pool(pool: str) -> str:
    """Return `pool` if it is a valid pool name, else raise ValueError."""
    if not isinstance(pool, str) or not _POOL.match(pool):
        raise ValueError(f"invalid pool name {pool!r}: expected [a-z0-9][a-z0-9-]{{0,31}}")
    return pool


PoolName = Annotated[str, AfterValidator(validate_pool)]


@dataclass(frozen=True)
class Topics:
    """Every topic and group name of one deployment, built from a prefix (default "tabstream",
    which gives the names of DESIGN.md §3; tests and side-by-side deployments use their own)."""

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

    def group(self, pool: str) -> str:
        """The consumer group of a pool's workers."""
        return f"{self.prefix}-workers.{validate_pool(pool)}"

    def projection_topics(self, pools: Iterable[str]) -> list[str]:
        """Every topic the projection folds: each pool's commands, control, then events (a
        rebuild reading in this order meets a job's RunRequested before its worker events)."""
        return [*(self.commands(p) for p in sorted(set(pools))), self.control, self.events]

    def partition_counts(self, pools: Iterable[str], *, dlq: bool = True) -> dict[str, int]:
        """Default partition counts of the deployment's topics (for ``create_topics``)."""
        counts = {self.events: DEFAULT_PARTITIONS["events"]}
        counts[self.control] = DEFAULT_PARTITIONS["control"]
        for pool in sorted(set(pools)):
            counts[self.commands(pool)] = DEFAULT_PARTITIONS["commands"]
            if dlq:
                counts[self.dlq(pool)] = DEFAULT_PARTITIONS["dlq"]
        return counts


DEFAULT_TOPICS = Topics()


def commands_topic(pool: str) -> str:
    """The command topic of a worker pool: tabstream.commands.<pool>."""
    return DEFAULT_TOPICS.commands(pool)


def dlq_topic(pool: str) -> str:
    """The dead-letter topic of a pool: tabstream.commands.<pool>.dlq."""
    return DEFAULT_TOPICS.dlq(pool)


def worker_group(pool: str) -> str:
    """The consumer group of a pool's workers: tabstream-workers.<pool>."""
    return DEFAULT_TOPICS.group(pool)
