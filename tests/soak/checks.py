"""What the soak proves at the end, read from the log and the deployment itself."""

from __future__ import annotations

import asyncio
import subprocess
from collections import Counter
from dataclasses import dataclass

from aiokafka import AIOKafkaClient, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.consumer import AIOKafkaConsumer

from tabstream.adapters.bus.kafka.kafka_log import KafkaEventLog
from tabstream.schemas import TERMINAL_TYPES, decode
from tabstream.schemas.topics import Topics
from tests.soak.deployment import CLI, Deployment


def leader_node(bootstrap: str, topic: str, partition: int = 0) -> int:
    """The broker id leading ``topic``'s ``partition`` (kafka.sh cluster nodes are ids 1-3)."""

    async def ask() -> int:
        client = AIOKafkaClient(bootstrap_servers=bootstrap)
        await client.bootstrap()
        try:
            cluster = await client.fetch_all_metadata()
            leader = cluster.leader_for_partition(TopicPartition(topic, partition))
            assert leader is not None and leader >= 0, f"no leader for {topic}[{partition}]"
            return int(leader)
        finally:
            await client.close()

    return asyncio.run(ask())


def terminal_counts(bootstrap: str, topics: Topics) -> Counter[str]:
    """How many terminal events (JobCompleted/Failed/Cancelled) the log holds per job."""

    async def count() -> Counter[str]:
        log = KafkaEventLog(bootstrap, client_id="soak-check")
        await log.start()
        try:
            found: Counter[str] = Counter()
            async for record in log.read(topics.events):
                env = decode(record.value)
                if env.type in TERMINAL_TYPES:
                    found[env.aggregate_id] += 1
            return found
        finally:
            await log.close()

    return asyncio.run(count())


def group_lag(bootstrap: str, topics: Topics, pool: str = "cpu") -> int:
    """Records of the pool's commands topic the worker group has not committed past."""

    async def lag() -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        await admin.start()
        await consumer.start()
        try:
            committed = await admin.list_consumer_group_offsets(topics.group(pool))
            parts = consumer.partitions_for_topic(topics.commands(pool)) or set()
            tps = [TopicPartition(topics.commands(pool), p) for p in parts]
            ends = await consumer.end_offsets(tps)
            return sum(ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in tps)
        finally:
            await consumer.stop()
            await admin.close()

    return asyncio.run(lag())


@dataclass(frozen=True)
class Digests:
    """Each projection store's live digest and the digest of a rebuild up to its offsets."""

    live: dict[str, str]
    rebuilt: dict[str, str]


def projection_digests(deployment: Deployment) -> Digests:
    """``tabstream projection rebuild --verify`` on every store (API replicas and standalone)."""
    live, rebuilt = {}, {}
    for name in [s.name for s in deployment.api_services()] + ["projection"]:
        data_dir = deployment.root / ("proj" if name == "projection" else name)
        argv = [*CLI, "projection", "rebuild", "--verify", "--data-dir", str(data_dir)]
        out = subprocess.run(
            argv, env=deployment.env(), capture_output=True, text=True, timeout=300
        ).stdout
        values = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        live[name] = values.get("live digest", "").strip()
        rebuilt[name] = values.get("rebuilt digest", "").strip()
    return Digests(live, rebuilt)
