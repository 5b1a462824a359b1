"""Composition root of the projection commands (``tabstream projection``, ``projection
rebuild``, ``replay``): settings -> event log, topics, pools and the live store's path."""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tabstream.adapters.bus.port import EventLog
from tabstream.bootstrap.common import build_event_log, parse_pools
from tabstream.projection import ProjectionService, ProjectionStore, rebuild, replay
from tabstream.schemas.topics import Topics
from tabstream.settings import ProjectionSettings

T = TypeVar("T")


@dataclass(frozen=True)
class ProjectionParts:
    """What the projection commands work on."""

    log: EventLog
    topics: Topics
    pools: list[str]
    store_path: Path

    @property
    def topic_names(self) -> list[str]:
        """The topics the projection folds."""
        return list(self.topics.projection_topics(self.pools))

    async def with_log(self, work: Callable[[], Awaitable[T]]) -> T:
        """Start the log, run ``work``, close the log."""
        await self.log.start()
        try:
            return await work()
        finally:
            await self.log.close()


def build_projection_parts(settings: ProjectionSettings) -> ProjectionParts:
    """The event log, topics, pools and live store of the settings' projection."""
    prefix = settings.topic_prefix
    return ProjectionParts(
        build_event_log(settings, client_id="tabstream-projection"),
        Topics(prefix),
        list(parse_pools(settings.pools)),
        settings.data_dir / f"projection-{prefix}.sqlite",
    )


async def serve_projection(parts: ProjectionParts) -> None:
    """Fold the log into the live store until cancelled."""
    store = ProjectionStore(parts.store_path)
    try:
        await parts.with_log(ProjectionService(parts.log, store, parts.topics, parts.pools).run)
    finally:
        store.close()


async def rebuild_digest(parts: ProjectionParts, *, verify: bool) -> tuple[str, str | None]:
    """(digest of a rebuild from offset 0 into a temporary store, the live store's digest when
    ``verify``: the rebuild then stops at the live store's offsets)."""
    until, live_digest = None, None
    if verify:
        live = ProjectionStore(parts.store_path)
        until, live_digest = live.snapshot()
        live.close()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "rebuild.sqlite"
        digest = await parts.with_log(
            lambda: rebuild(parts.log, fresh, parts.topic_names, until=until)
        )
    return digest, live_digest


async def replay_items(parts: ProjectionParts, job: str | None, from_offset: int) -> list[Any]:
    """Every record of the projection's topics, decoded (or with its error)."""

    async def collect() -> list[Any]:
        names = parts.topic_names
        return [i async for i in replay(parts.log, names, job=job, from_offset=from_offset)]

    return await parts.with_log(collect)
