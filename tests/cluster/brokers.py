"""The 3-broker test cluster from the tests' side: kill -9 and restart one node through
``scripts/kafka.sh``, and read partition leaders, replicas, ISRs and topic configs with
aiokafka's admin client."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

ROOT = Path(__file__).resolve().parents[2]
DYNAMIC_TOPIC_CONFIG = 1
"""``config_source`` of a setting made on the topic itself (not inherited from the broker)."""


def base_port(bootstrap: str) -> int:
    """``KAFKA_CLUSTER_PORT`` of the cluster: node N listens on base + 2(N-1)."""
    return min(int(address.rpartition(":")[2]) for address in bootstrap.split(","))


def cluster_script(bootstrap: str, action: str, node: int) -> None:
    """``scripts/kafka.sh cluster-<action> <node>`` on the cluster named by ``bootstrap``."""
    env = {**os.environ, "KAFKA_CLUSTER_PORT": str(base_port(bootstrap))}
    script = str(ROOT / "scripts" / "kafka.sh")
    subprocess.run([script, f"cluster-{action}", str(node)], env=env, check=True, cwd=ROOT)


@dataclass(frozen=True, order=True)
class PartitionState:
    """One partition as the cluster's metadata shows it."""

    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@asynccontextmanager
async def admin_client(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed on exit."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def partitions(admin: AIOKafkaAdminClient, topic: str) -> list[PartitionState]:
    """Leader, replicas and ISR of every partition of ``topic`` (which must exist)."""
    [meta] = await admin.describe_topics([topic])
    assert meta["error_code"] == 0, meta
    return sorted(
        PartitionState(p["partition"], p["leader"], tuple(p["replicas"]), tuple(p["isr"]))
        for p in meta["partitions"]
    )


async def topic_config(admin: AIOKafkaAdminClient, topic: str) -> dict[str, tuple[str, int]]:
    """Every config of ``topic``: name -> (value, config_source)."""
    [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    [resource] = response.to_object()["resources"]
    assert resource["error_code"] == 0, resource
    entries: list[dict[str, Any]] = resource["config_entries"]
    return {e["config_names"]: (e["config_value"], e["config_source"]) for e in entries}


async def wait_for_partitions(
    admin: AIOKafkaAdminClient,
    topic: str,
    ready: Callable[[list[PartitionState]], bool],
    what: str,
    timeout_s: float = 60.0,
) -> list[PartitionState]:
    """Poll the metadata of ``topic`` until ``ready`` holds (a node just killed may still be
    asked and fail: that is retried too); AssertionError naming ``what`` after the timeout."""
    deadline = time.monotonic() + timeout_s
    state: list[PartitionState] | str = "no answer"
    while time.monotonic() < deadline:
        try:
            state = await partitions(admin, topic)
            if ready(state):
                return state
        except (KafkaError, AssertionError) as exc:
            state = repr(exc)
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}: {state}")


async def retried(call: Callable[[], Awaitable[Any]], timeout_s: float = 30.0) -> Any:
    """``call()`` until it does not raise a Kafka error (a client's first request after a node
    died may go to it); the last error after the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await call()
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.25)
