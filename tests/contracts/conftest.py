"""The EventLog contract fixture: one suite, run against every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tabstream.adapters.bus.embedded import EmbeddedEventLog
from tabstream.adapters.bus.kafka import KafkaEventLog
from tabstream.adapters.bus.port import EventLog


@dataclass
class Backend:
    """Opens fresh, started instances of one backend on the same storage (a restart)."""

    name: str
    make: Callable[[], EventLog]
    opened: list[EventLog] = field(default_factory=list)

    async def open(self) -> EventLog:
        """A new started instance; the fixture closes it at teardown."""
        log = self.make()
        await log.start()
        self.opened.append(log)
        return log

    async def restart(self, log: EventLog) -> EventLog:
        """Close ``log`` and open a fresh instance on the same storage."""
        await log.close()
        return await self.open()


CLUSTER_REPLICATION, CLUSTER_MIN_ISR = 3, 2


@pytest.fixture(
    params=[
        "embedded",
        pytest.param("kafka", marks=pytest.mark.kafka),
        pytest.param("cluster", marks=pytest.mark.cluster),
    ]
)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """A factory for the parametrised backend: embedded, the single broker, or the 3-broker
    cluster (topics with replication 3 and min.insync.replicas 2)."""
    make: Callable[[], EventLog]
    if request.param == "kafka":
        bootstrap: str = request.getfixturevalue("kafka_bootstrap")
        make = lambda: KafkaEventLog(bootstrap)  # noqa: E731
    elif request.param == "cluster":
        brokers: str = request.getfixturevalue("kafka_cluster_bootstrap")
        make = lambda: KafkaEventLog(  # noqa: E731
            brokers, replication_factor=CLUSTER_REPLICATION, min_insync_replicas=CLUSTER_MIN_ISR
        )
    else:
        make = lambda: EmbeddedEventLog(tmp_path / "log.db")  # noqa: E731
    opened = Backend(request.param, make)
    yield opened
    for log in opened.opened:
        await log.close()
