"""The topics the API writes and reads: the deployment's ``Topics`` plus its pools."""

from __future__ import annotations

from dataclasses import dataclass, field

from tabstream.schemas.topics import Topics


@dataclass(frozen=True)
class ApiTopics(Topics):
    """``Topics`` with the pools this API routes runs to."""

    pools: tuple[str, ...] = field(default=("cpu",))

    def all_with_partitions(self) -> dict[str, int]:
        """Every topic of this deployment and its partition count (schemas.topics defaults)."""
        return self.partition_counts(self.pools)
