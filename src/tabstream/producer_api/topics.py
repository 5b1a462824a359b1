"""Topic names the API writes and reads, with a configurable prefix (tests use a unique one)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tabstream.schemas.topics import DEFAULT_PARTITIONS, validate_pool


@dataclass(frozen=True)
class ApiTopics:
    """``<prefix>.events``, ``<prefix>.control``, ``<prefix>.commands.<pool>[.dlq]``."""

    prefix: str = "tabstream"
    pools: tuple[str, ...] = field(default=("cpu",))

    @property
    def events(self) -> str:
        return f"{self.prefix}.events"

    @property
    def control(self) -> str:
        return f"{self.prefix}.control"

    def commands(self, pool: str) -> str:
        """The command topic of ``pool``."""
        return f"{self.prefix}.commands.{validate_pool(pool)}"

    def dlq(self, pool: str) -> str:
        """The dead-letter topic of ``pool``."""
        return f"{self.commands(pool)}.dlq"

    def all_with_partitions(self) -> dict[str, int]:
        """Every topic of this deployment and its partition count (schemas.topics defaults)."""
        out = {
            self.events: DEFAULT_PARTITIONS["events"],
            self.control: DEFAULT_PARTITIONS["control"],
        }
        for pool in self.pools:
            out[self.commands(pool)] = DEFAULT_PARTITIONS["commands"]
            out[self.dlq(pool)] = DEFAULT_PARTITIONS["dlq"]
        return out
