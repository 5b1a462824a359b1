"""The Kafka log's long-lived clients, each connected on first use and reconnected after
``close``: the idempotent producer, the admin client (topics, metadata) and the probe (a
consumer that never fetches and answers end-offset requests)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as KafkaTP
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, NodeNotReadyError
from aiokafka.protocol.metadata import MetadataRequest

from tabstream.adapters.bus.kafka.calls import bounded, start_or_release, unavailable
from tabstream.adapters.bus.kafka.client_config import KafkaClientConfig

_Name = Literal["producer", "admin", "probe"]


class SharedClients:
    """The clients one ``KafkaEventLog`` shares between its calls, its readers and followers."""

    def __init__(self, config: KafkaClientConfig) -> None:
        self.config = config
        self._clients: dict[_Name, Any] = {}
        self._lock = asyncio.Lock()

    async def producer(self) -> Any:
        """The started idempotent acks=all ``AIOKafkaProducer`` (every publish asks for it: once
        connected it is one dictionary lookup)."""
        producer = self._clients.get("producer")
        return producer or await self._shared("producer", self._start_producer)

    async def admin(self) -> Any:
        """The started ``AIOKafkaAdminClient``."""
        return await self._shared("admin", self._start_admin)

    async def partitions(self, topic: str) -> int:
        """Partition count of ``topic``; KeyError when no broker shows it (no auto-create).

        On a cluster each broker's metadata cache learns of a new topic a moment after the
        controller: one broker may show a topic another does not show yet, so a topic exists
        when any broker that answers shows it."""
        admin = await self.admin()
        request = MetadataRequest([topic], allow_auto_topic_creation=False)
        count = await bounded(
            "metadata", self.config.timeout_s, lambda: _partition_count(admin, request, topic)
        )
        if count is None:
            raise KeyError(topic)
        return count

    async def end_offsets(self, tps: Sequence[KafkaTP]) -> dict[KafkaTP, int]:
        """Last stable offsets of ``tps`` in one request, on the probe: a consumer that never
        fetches (a request on a fetching consumer's connection would queue behind its long
        poll: the broker answers one connection's requests in order)."""
        probe = await self._shared("probe", self._start_probe)
        ends = await bounded(
            "end_offsets", self.config.timeout_s, lambda: probe.end_offsets(list(tps))
        )
        return {tp: int(o) for tp, o in ends.items()}

    async def close(self) -> None:
        """Stop every client (the producer first: it flushes); the next use reconnects."""
        clients, self._clients = self._clients, {}
        for name in ("producer", "probe"):
            if (client := clients.get(name)) is not None:
                await client.stop()
        if (admin := clients.get("admin")) is not None:
            await admin.close()

    async def _shared(self, name: _Name, start: Callable[[], Awaitable[Any]]) -> Any:
        """The client called ``name``, started by ``start()`` on first use (once: under a lock)."""
        client = self._clients.get(name)
        if client is None:
            async with self._lock:
                client = self._clients.get(name)
                if client is None:
                    client = self._clients[name] = await start()
        return client

    async def _start_producer(self) -> Any:
        producer = AIOKafkaProducer(**self.config.producer_kwargs())
        return await start_or_release("connect", producer, self.config.timeout_s)

    async def _start_admin(self) -> Any:
        admin = AIOKafkaAdminClient(**self.config.client_kwargs())
        return await start_or_release("admin start", admin, self.config.timeout_s, admin.close)

    async def _start_probe(self) -> Any:
        probe = AIOKafkaConsumer(**self.config.reader_kwargs())
        return await start_or_release("connect", probe, self.config.timeout_s)


async def _partition_count(admin: Any, request: MetadataRequest, topic: str) -> int | None:
    """Ask the brokers, in random order, for ``topic``'s metadata until one shows it: its
    partition count, or None when every broker that answered lacks it. A broker that is down
    (until the others fence it, it is still in the metadata) is skipped; when none answers,
    the admin client's metadata is refreshed for the next call and the last error raised.

    aiokafka has no public call for the metadata of chosen topics without auto-creating them
    (``describe_topics`` fetches every topic of the cluster, or auto-creates a missing one,
    and asks one random broker), so this is the adapter's one use of aiokafka's private
    members: the admin client's ``_send_request`` and its ``_client``'s broker list.
    """
    client = admin._client
    nodes = [broker.nodeId for broker in client.cluster.brokers()]
    random.shuffle(nodes)
    error: KafkaError = NodeNotReadyError("no broker known")
    answered = False
    for node in nodes:
        try:
            response = await admin._send_request(request, node)
        except KafkaError as exc:
            if not unavailable(exc):
                raise
            error = exc
            continue
        answered = True
        for meta in response.to_object()["topics"]:
            if meta["topic"] == topic and meta["error_code"] == 0 and meta["partitions"]:
                return len(meta["partitions"])
    if answered:
        return None
    client.force_metadata_update()
    raise error
