"""The bus backends' shared helpers: starting a Kafka client without leaking it, asking a
cluster's brokers for a topic's metadata, and the embedded backend's one wait loop."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka.errors import NodeNotReadyError
from aiokafka.protocol.metadata import MetadataRequest

from tabstream.adapters.bus.embedded.changes import RECHECK_S, ChangeSignal
from tabstream.adapters.bus.kafka.calls import start_or_release
from tabstream.adapters.bus.kafka.clients import _partition_count
from tabstream.adapters.bus.port import BusUnavailable


class FakeClient:
    def __init__(self, start_s: float = 0.0, fail: bool = False) -> None:
        self.start_s, self.fail = start_s, fail
        self.stopped = self.closed = False

    async def start(self) -> None:
        await asyncio.sleep(self.start_s)
        if self.fail:
            raise ValueError("bad config")

    async def stop(self) -> None:
        self.stopped = True

    async def close(self) -> None:
        self.closed = True


async def test_a_started_client_is_returned_and_kept() -> None:
    client = FakeClient()
    assert await start_or_release("connect", client, 1.0) is client
    assert not client.stopped


async def test_a_client_that_does_not_start_in_time_is_stopped() -> None:
    client = FakeClient(start_s=10.0)
    with pytest.raises(BusUnavailable, match="connect failed"):
        await start_or_release("connect", client, 0.05)
    assert client.stopped


async def test_a_client_that_fails_to_start_is_released_and_the_error_goes_on() -> None:
    client = FakeClient(fail=True)
    with pytest.raises(ValueError, match="bad config"):
        await start_or_release("admin start", client, 1.0, client.close)
    assert client.closed and not client.stopped


async def test_poll_until_returns_what_a_notify_made_available() -> None:
    changes, box = ChangeSignal(), list[int]()

    async def write_later() -> None:
        await asyncio.sleep(0.01)
        box.append(1)
        changes.notify()

    writer = asyncio.create_task(write_later())
    started = asyncio.get_running_loop().time()
    assert await changes.poll_until(lambda: list(box), 5.0) == [1]
    assert asyncio.get_running_loop().time() - started < RECHECK_S
    await writer


async def test_poll_until_rechecks_and_gives_up_after_the_timeout() -> None:
    changes, rechecks = ChangeSignal(), list[int]()
    found: list[int] = await changes.poll_until(list, 0.5, on_recheck=lambda: rechecks.append(1))
    assert found == []
    assert len(rechecks) >= 2


async def test_poll_until_stops_waiting_once_inactive() -> None:
    changes = ChangeSignal()
    started = asyncio.get_running_loop().time()
    assert await changes.poll_until(list, 5.0, active=lambda: False) == []
    assert asyncio.get_running_loop().time() - started < RECHECK_S


@dataclass
class FakeMetadata:
    topics: list[dict[str, Any]]

    def to_object(self) -> dict[str, Any]:
        return {"topics": self.topics}


@dataclass
class FakeBroker:
    nodeId: int


@dataclass
class FakeCluster:
    """Brokers by node id: the partition count each one's metadata shows for topic ``t``
    (None: not yet), or an exception when it is down."""

    views: dict[int, int | Exception | None]
    refreshed: bool = False
    asked: list[int] = field(default_factory=list)

    @property
    def _client(self) -> FakeCluster:
        return self

    @property
    def cluster(self) -> FakeCluster:
        return self

    def brokers(self) -> list[FakeBroker]:
        return [FakeBroker(node) for node in self.views]

    def force_metadata_update(self) -> None:
        self.refreshed = True

    async def _send_request(self, request: MetadataRequest, node: int) -> FakeMetadata:
        self.asked.append(node)
        view = self.views[node]
        if isinstance(view, Exception):
            raise view
        if view is None:
            return FakeMetadata([{"topic": "t", "error_code": 3, "partitions": []}])
        return FakeMetadata([{"topic": "t", "error_code": 0, "partitions": list(range(view))}])


REQUEST = MetadataRequest(["t"], allow_auto_topic_creation=False)


@pytest.mark.parametrize("seed", range(8))
async def test_a_topic_one_broker_does_not_show_yet_is_found_on_another(seed: int) -> None:
    random.seed(seed)
    cluster = FakeCluster({1: None, 2: NodeNotReadyError("down"), 3: 4})
    assert await _partition_count(cluster, REQUEST, "t") == 4
    assert not cluster.refreshed


async def test_a_topic_no_answering_broker_shows_is_missing() -> None:
    cluster = FakeCluster({1: None, 2: NodeNotReadyError("down"), 3: None})
    assert await _partition_count(cluster, REQUEST, "t") is None
    assert sorted(cluster.asked) == [1, 2, 3]


async def test_when_no_broker_answers_the_metadata_is_refreshed_and_the_error_raised() -> None:
    cluster = FakeCluster({1: NodeNotReadyError("down"), 2: NodeNotReadyError("down")})
    with pytest.raises(NodeNotReadyError):
        await _partition_count(cluster, REQUEST, "t")
    assert cluster.refreshed
