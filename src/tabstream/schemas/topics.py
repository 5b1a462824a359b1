"""Topic and consumer-group names."""

from __future__ import annotations

import re
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


def commands_topic(pool: str) -> str:
    """The command topic of a worker pool: tabstream.commands.<pool>."""
    return f"tabstream.commands.{validate_pool(pool)}"


def dlq_topic(pool: str) -> str:
    """The dead-letter topic of a pool: tabstream.commands.<pool>.dlq."""
    return f"{commands_topic(pool)}.dlq"


def worker_group(pool: str) -> str:
    """The consumer group of a pool's workers: tabstream-workers.<pool>."""
    return f"tabstream-workers.{validate_pool(pool)}"
