"""Replication on the 3-broker cluster: topics get 3 replicas and min.insync.replicas 2, and the
log goes on publishing (acks=all), reading and committing transactions with a partition's
leader killed (-9); the restarted node rejoins the ISR."""

from __future__ import annotations

from pathlib import Path

import pytest

from tabstream.adapters.bus.kafka import KafkaEventLog
from tabstream.adapters.bus.port import EventLog
from tabstream.bootstrap.common import build_event_log
from tabstream.settings import CommonSettings
from tests.cluster.brokers import (
    DYNAMIC_TOPIC_CONFIG,
    admin_client,
    cluster_script,
    partitions,
    retried,
    topic_config,
    wait_for_partitions,
)
from tests.contracts.test_event_log import drain, member, out, read_all

pytestmark = pytest.mark.cluster
NODES = frozenset({1, 2, 3})
INTERNAL_TOPICS = ("__consumer_offsets", "__transaction_state")


async def one_transaction(log: EventLog, source: str, sink: str, group: str) -> list[bytes]:
    """Consume every record of ``source`` as ``group``, then publish ``done`` to ``sink`` and
    commit the offsets in one transaction; the values consumed."""
    consumer = await member(log, group, source)
    try:
        ends = await log.end_offsets(source)
        got = await drain(consumer, sum(ends.values()), timeout_s=30.0)
        async with consumer.transaction() as tx:
            await tx.publish(out(sink, "job", "done"))
            tx.commit_offsets({got[-1].tp: got[-1].offset + 1})
    finally:
        await consumer.stop()
    return [r.value for r in got]


async def test_topics_get_replication_3_and_min_isr_2_from_the_settings(
    kafka_cluster_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    settings = CommonSettings(
        bus=f"kafka://{kafka_cluster_bootstrap}",
        data_dir=tmp_path,
        kafka_replication=3,
        kafka_min_isr=2,
    )
    source, sink = f"{unique_name}-in", f"{unique_name}-out"
    log = build_event_log(settings, client_id="rf-test")
    await log.start()
    try:
        await log.create_topics({source: 3, sink: 1})
        await log.publish(out(source, "job", "cmd"))
        assert await one_transaction(log, source, sink, unique_name) == [b"cmd"]
    finally:
        await log.close()
    async with admin_client(kafka_cluster_bootstrap) as admin:
        for topic, count in ((source, 3), (sink, 1)):
            state = await partitions(admin, topic)
            assert [p.partition for p in state] == list(range(count))
            assert all(set(p.replicas) == set(p.isr) == NODES for p in state), state
            config = await topic_config(admin, topic)
            assert config["min.insync.replicas"] == ("2", DYNAMIC_TOPIC_CONFIG)
        # the brokers' own topics: group offsets and the transaction log
        for topic in INTERNAL_TOPICS:
            state = await partitions(admin, topic)
            assert state and all(set(p.replicas) == NODES for p in state), (topic, state)
        [isr] = {(await topic_config(admin, t))["min.insync.replicas"][0] for t in INTERNAL_TOPICS}
        assert isr == "2"


async def test_the_log_survives_its_leader_killed_and_the_node_rejoins(
    kafka_cluster_bootstrap: str, unique_name: str
) -> None:
    brokers = kafka_cluster_bootstrap
    source, sink = f"{unique_name}-in", f"{unique_name}-out"
    log = KafkaEventLog(brokers, client_id="kill-test", replication_factor=3, min_insync_replicas=2)
    await log.start()
    down: int | None = None  # the node to restart, while it is down
    try:
        await log.create_topics({source: 1, sink: 1})
        before = [f"before-{i}" for i in range(20)]
        for value in before:
            await log.publish(out(source, "job", value))
        async with admin_client(brokers) as admin:
            [leader] = await partitions(admin, source)
            killed = down = leader.leader
            cluster_script(brokers, "kill", killed)
            [moved] = await wait_for_partitions(
                admin,
                source,
                lambda s: s[0].leader in NODES - {killed} and killed not in s[0].isr,
                f"a new leader of {source} with node {killed} out of its ISR",
            )
            assert len(moved.isr) == 2  # = min.insync.replicas: acks=all needs both
            after = [f"after-{i}" for i in range(20)]
            for value in after:  # no retry: each publish is acknowledged by the 2 in sync
                await log.publish(out(source, "job", value))
            values = [r.value.decode() for r in await read_all(log, source)]
            assert values == before + after
            consumed = await one_transaction(log, source, sink, unique_name)
            assert [v.decode() for v in consumed] == before + after
            assert [r.value for r in await read_all(log, sink)] == [b"done"]

            cluster_script(brokers, "restart", killed)
            down = None
            for topic in (source, sink):
                await wait_for_partitions(
                    admin,
                    topic,
                    lambda s: all(set(p.isr) == NODES for p in s),
                    f"node {killed} back in the ISR of {topic}",
                )
            await log.publish(out(source, "job", "rejoined"))
            values = [r.value.decode() for r in await retried(lambda: read_all(log, source))]
            assert values == [*before, *after, "rejoined"]
    finally:
        await log.close()
        if down is not None:
            cluster_script(brokers, "restart", down)
    async with admin_client(brokers) as admin:  # leave a whole cluster to the next test
        for topic in INTERNAL_TOPICS:
            await wait_for_partitions(
                admin, topic, lambda s: all(set(p.isr) == NODES for p in s), f"{topic} ISR"
            )
