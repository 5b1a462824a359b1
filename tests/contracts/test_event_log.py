"""EventLog contract: every backend must pass this suite unchanged."""

from __future__ import annotations

import asyncio
import time

import pytest

from tabstream.adapters.bus.partitioner import partition_for
from tabstream.adapters.bus.port import (
    EventLog,
    GroupConsumer,
    LogFollower,
    OutgoingRecord,
    Record,
    TopicPartition,
)
from tests.contracts.conftest import Backend

SESSION_MS = 6000


class Boom(Exception):
    pass


def out(topic: str, key: str, value: str) -> OutgoingRecord:
    return OutgoingRecord(topic, key, value.encode(), headers=(("type", b"Test"),))


async def member(log: EventLog, group: str, *topics: str, **kw: int) -> GroupConsumer:
    consumer = log.consumer(group, topics, session_timeout_ms=SESSION_MS, **kw)
    await consumer.start()
    return consumer


async def drain(consumer: GroupConsumer, n: int, timeout_s: float = 20.0) -> list[Record]:
    """Poll until ``n`` records arrived (or the timeout), then briefly for any extra."""
    got: list[Record] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < deadline:
        got += await consumer.poll(timeout_ms=200)
    got += await consumer.poll(timeout_ms=200)
    return got


async def until_assigned(
    *consumers: GroupConsumer, partitions: int, timeout_s: float = 20.0
) -> None:
    """Poll (an empty topic) until the consumers hold disjoint assignments covering everything."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sets = [c.assignment() for c in consumers]
        if all(sets) and sum(map(len, sets)) == partitions == len(frozenset().union(*sets)):
            return
        assert not any(await asyncio.gather(*(c.poll(timeout_ms=100) for c in consumers)))
    raise AssertionError(f"no stable assignment: {[c.assignment() for c in consumers]}")


async def read_all(log: EventLog, topic: str, **kw: int) -> list[Record]:
    return [r async for r in log.read(topic, **kw)]


async def test_ordering_per_key(backend: Backend, unique_name: str) -> None:
    log = await backend.open()
    await log.create_topics({unique_name: 4})
    sent = [out(unique_name, f"k{i % 20}", f"{i // 20}") for i in range(500)]
    positions = await asyncio.gather(*(log.publish(r) for r in sent))
    by_key: dict[str, list[int]] = {}
    for record in await read_all(log, unique_name):
        assert record.key is not None
        by_key.setdefault(record.key, []).append(int(record.value))
        assert record.header("type") == b"Test"
    assert by_key == {f"k{k}": list(range(25)) for k in range(20)}
    for key in by_key:
        offsets = [p.offset for r, p in zip(sent, positions, strict=True) if r.key == key]
        assert offsets == sorted(offsets)


async def test_keys_spread_over_partitions_like_kafka(backend: Backend, unique_name: str) -> None:
    log = await backend.open()
    await log.create_topics({unique_name: 4})
    assert await log.partitions(unique_name) == 4
    keys = [f"job-{i}" for i in range(100)]
    first = await asyncio.gather(*(log.publish(out(unique_name, k, "a")) for k in keys))
    again = await asyncio.gather(*(log.publish(out(unique_name, k, "b")) for k in keys))
    assert len({p.partition for p in first}) >= 3
    assert [p.partition for p in first] == [p.partition for p in again]
    assert [p.partition for p in first] == [partition_for(k, 4) for k in keys]


async def test_each_concurrent_publish_gets_the_position_its_record_is_read_at(
    backend: Backend, unique_name: str
) -> None:
    log = await backend.open()
    await log.create_topics({unique_name: 3})
    sent = [out(unique_name, f"k{i % 7}", f"v{i}") for i in range(300)]
    positions = await asyncio.gather(*(log.publish(r) for r in sent))
    assert len(set(positions)) == len(sent)
    read = {(r.partition, r.offset): (r.key, r.value) for r in await read_all(log, unique_name)}
    assert {p: read[p] for p in positions} == {
        p: (r.key, r.value) for p, r in zip(positions, sent, strict=True)
    }


async def test_publish_returns_increasing_offsets(backend: Backend, unique_name: str) -> None:
    log = await backend.open()
    await log.create_topics({unique_name: 1})
    offsets = [(await log.publish(out(unique_name, "k", str(i)))).offset for i in range(10)]
    assert offsets == sorted(set(offsets))
    assert (await log.end_offsets(unique_name))[0] == offsets[-1] + 1


async def test_commit_then_restart_resumes_after_commit(backend: Backend, unique_name: str) -> None:
    log = await backend.open()
    await log.create_topics({unique_name: 1})
    for i in range(10):
        await log.publish(out(unique_name, "k", str(i)))
    consumer = await member(log, unique_name, unique_name)
    got = await drain(consumer, 10)
    assert [r.value for r in got] == [str(i).encode() for i in range(10)]
    await consumer.commit({got[5].tp: got[5].offset + 1})
    await consumer.stop()
    log = await backend.restart(log)
    consumer = await member(log, unique_name, unique_name)
    again = await drain(consumer, 4)
    assert [r.value for r in again] == [str(i).encode() for i in range(6, 10)]
    await consumer.stop()


async def test_no_commit_then_restart_redelivers(backend: Backend, unique_name: str) -> None:
    log = await backend.open()
    await log.create_topics({unique_name: 2})
    for i in range(6):
        await log.publish(out(unique_name, f"k{i}", str(i)))
    consumer = await member(log, unique_name, unique_name)
    first = await drain(consumer, 6)
    await consumer.stop()
    log = await backend.restart(log)
    consumer = await member(log, unique_name, unique_name)
    second = await drain(consumer, 6)
    assert len(first) == 6
    assert sorted((r.partition, r.offset, r.value) for r in second) == sorted(
        (r.partition, r.offset, r.value) for r in first
    )
    await consumer.stop()


async def test_replay_from_start_and_from_offset(backend: Backend, unique_name: str) -> None:
    log = await backend.open()
    await log.create_topics({unique_name: 1})
    values = [str(i).encode() for i in range(30)]
    for v in values:
        await log.publish(OutgoingRecord(unique_name, "k", v))
    assert [r.value for r in await read_all(log, unique_name)] == values
    tail = await read_all(log, unique_name, from_offset=25)
    assert [r.value for r in tail] == values[25:]
    assert [r.offset for r in tail] == sorted(r.offset for r in tail)
    assert await read_all(log, unique_name, from_offset=30) == []


async def test_replay_in_offset_order_per_partition(backend: Backend, unique_name: str) -> None:
    log = await backend.open()
    await log.create_topics({unique_name: 3})
    await asyncio.gather(*(log.publish(out(unique_name, f"k{i}", str(i))) for i in range(60)))
    records = await read_all(log, unique_name)
    assert len(records) == 60
    for p in {r.partition for r in records}:
        offsets = [r.offset for r in records if r.partition == p]
        assert offsets == list(range(len(offsets)))
    assert {(r.partition, r.offset) for r in records} == {
        (p, o) for p, n in (await log.end_offsets(unique_name)).items() for o in range(n)
    }
    only = await read_all(log, unique_name, partitions=[records[0].partition])
    assert {r.partition for r in only} == {records[0].partition}


async def test_replay_keeps_each_keys_publish_order(backend: Backend, unique_name: str) -> None:
    log = await backend.open()
    await log.create_topics({unique_name: 4})
    for i in range(80):
        await log.publish(out(unique_name, f"k{i % 8}", str(i)))
    by_key: dict[str | None, list[int]] = {}
    for r in await read_all(log, unique_name):
        by_key.setdefault(r.key, []).append(int(r.value))
    assert by_key == {f"k{k}": list(range(k, 80, 8)) for k in range(8)}


async def test_read_batches_is_read_in_lists(backend: Backend, unique_name: str) -> None:
    log = await backend.open()
    await log.create_topics({unique_name: 3})
    await asyncio.gather(*(log.publish(out(unique_name, f"k{i}", str(i))) for i in range(60)))
    batches = [b async for b in log.read_batches(unique_name)]
    assert batches and all(batches)
    flat = [r for b in batches for r in b]
    assert sorted(flat) == sorted(await read_all(log, unique_name))
    for p in range(3):
        offsets = [r.offset for r in flat if r.partition == p]
        assert offsets == sorted(offsets)
    tail = [r async for b in log.read_batches(unique_name, from_offset=5) for r in b]
    assert tail and min(r.offset for r in tail) == 5
    part = [r async for b in log.read_batches(unique_name, partitions=[1]) for r in b]
    assert {r.partition for r in part} == {1}
    assert [b async for b in log.read_batches(unique_name, from_offset=10_000)] == []


async def test_record_api(backend: Backend, unique_name: str) -> None:
    log = await backend.open()
    await log.create_topics({unique_name: 2})
    pos = await log.publish(out(unique_name, "key", "v"))
    [record] = await read_all(log, unique_name)
    assert (record.topic, record.partition, record.offset) == (unique_name, pos.partition, 0)
    assert (record.key, record.value, record.headers) == ("key", b"v", (("type", b"Test"),))
    assert record.tp == TopicPartition(unique_name, pos.partition)
    assert record.header("type") == b"Test" and record.header("missing") is None
    assert record.timestamp_ms > 0


async def test_transaction_is_atomic(backend: Backend, unique_name: str) -> None:
    source, sink = f"{unique_name}-in", f"{unique_name}-out"
    log = await backend.open()
    await log.create_topics({source: 1, sink: 1})
    await log.publish(out(source, "job", "first"))
    await log.publish(out(source, "job", "second"))
    consumer = await member(log, unique_name, source)
    first, second = await drain(consumer, 2)
    async with consumer.transaction() as tx:
        await tx.publish(out(sink, "job", "done-1"))
        tx.commit_offsets({first.tp: first.offset + 1})
    with pytest.raises(Boom):
        async with consumer.transaction() as tx:
            await tx.publish(out(sink, "job", "done-2"))
            tx.commit_offsets({second.tp: second.offset + 1})
            raise Boom
    assert [r.value for r in await read_all(log, sink)] == [b"done-1"]
    reader = await member(log, f"{unique_name}-reader", sink)
    assert [r.value for r in await drain(reader, 1)] == [b"done-1"]
    await reader.stop()
    await consumer.stop()
    log = await backend.restart(log)
    consumer = await member(log, unique_name, source)
    assert [r.value for r in await drain(consumer, 1)] == [b"second"]
    await consumer.stop()


async def test_two_members_split_partitions(backend: Backend, unique_name: str) -> None:
    log = await backend.open()
    await log.create_topics({unique_name: 4})
    a = await member(log, unique_name, unique_name)
    b = await member(log, unique_name, unique_name)
    await until_assigned(a, b, partitions=4)
    assert a.assignment().isdisjoint(b.assignment())
    assert a.assignment() | b.assignment() == {TopicPartition(unique_name, p) for p in range(4)}
    await asyncio.gather(*(log.publish(out(unique_name, f"k{i}", str(i))) for i in range(40)))
    got_a, got_b = await asyncio.gather(drain(a, 1, 5.0), drain(b, 1, 5.0))
    for _ in range(20):
        if len(got_a) + len(got_b) >= 40:
            break
        more_a, more_b = await asyncio.gather(a.poll(200), b.poll(200))
        got_a, got_b = got_a + more_a, got_b + more_b
    assert got_a and got_b
    assert {r.tp for r in got_a} <= a.assignment() and {r.tp for r in got_b} <= b.assignment()
    assert sorted(int(r.value) for r in got_a + got_b) == list(range(40))
    await a.stop()
    await b.stop()


async def test_pause_keeps_membership_past_max_poll_interval(
    backend: Backend, unique_name: str
) -> None:
    log = await backend.open()
    await log.create_topics({unique_name: 1})
    consumer = await member(log, unique_name, unique_name, max_poll_interval_ms=3000)
    await until_assigned(consumer, partitions=1)
    assigned = consumer.assignment()
    consumer.pause(*assigned)
    for i in range(3):
        await log.publish(out(unique_name, "k", str(i)))
    deadline = time.monotonic() + 4.5
    while time.monotonic() < deadline:
        assert await consumer.poll(timeout_ms=300) == []
    assert consumer.assignment() == assigned
    consumer.resume(*assigned)
    assert [r.value for r in await drain(consumer, 3)] == [b"0", b"1", b"2"]
    await consumer.stop()


async def test_seek_to_committed_redelivers(backend: Backend, unique_name: str) -> None:
    log = await backend.open()
    await log.create_topics({unique_name: 1})
    for i in range(5):
        await log.publish(out(unique_name, "k", str(i)))
    consumer = await member(log, unique_name, unique_name)
    got = await drain(consumer, 5)
    tp = got[0].tp
    await consumer.seek_to_committed(tp)
    assert [r.value for r in await drain(consumer, 5)] == [r.value for r in got]
    await consumer.commit({tp: got[2].offset + 1})
    await consumer.seek_to_committed(tp)
    assert [r.value for r in await drain(consumer, 2)] == [b"3", b"4"]
    await consumer.stop()


async def follow_until_caught_up(
    follower: LogFollower, ends: dict[TopicPartition, int], timeout_s: float = 20.0
) -> list[Record]:
    """Poll until the follower's position reached ``ends`` in every partition."""
    got: list[Record] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        positions = {tp: await follower.position(tp) for tp in ends}
        if all(positions[tp] >= end for tp, end in ends.items()):
            return got
        got += await follower.poll(timeout_ms=100)
    raise AssertionError(f"follower stuck at {positions}, ends {ends}")


async def test_follower_follows_every_partition_of_its_topics(
    backend: Backend, unique_name: str
) -> None:
    a, b = f"{unique_name}-a", f"{unique_name}-b"
    log = await backend.open()
    await log.create_topics({a: 3, b: 1})
    for i in range(30):
        await log.publish(out(a, f"k{i % 7}", str(i)))
    await log.publish(out(b, "x", "b0"))
    follower = log.follower([a, b])
    await follower.start()
    try:
        ends = await follower.end_offsets()
        assert set(ends) == {TopicPartition(a, p) for p in range(3)} | {TopicPartition(b, 0)}
        assert ends[TopicPartition(b, 0)] == 1 and sum(ends.values()) == 31
        got = await follow_until_caught_up(follower, ends)
        assert sorted(got) == sorted(await read_all(log, a) + await read_all(log, b))
        for tp in ends:
            offsets = [r.offset for r in got if r.tp == tp]
            assert offsets == sorted(offsets)
        # it keeps following: records published later arrive without a restart
        await log.publish(out(b, "x", "b1"))
        later = await follower.end_offsets()
        assert later[TopicPartition(b, 0)] == 2
        more = await follow_until_caught_up(follower, later)
        assert [r.value for r in more] == [b"b1"]
        assert await follower.poll(timeout_ms=50) == []
    finally:
        await follower.stop()
    resumed = log.follower([b], from_offsets={TopicPartition(b, 0): 1})
    await resumed.start()
    try:
        assert await resumed.position(TopicPartition(b, 0)) == 1
        got = await follow_until_caught_up(resumed, await resumed.end_offsets())
        assert [r.value for r in got] == [b"b1"]
    finally:
        await resumed.stop()


async def test_follower_position_passes_transaction_markers(
    backend: Backend, unique_name: str
) -> None:
    """On Kafka the end offset of a partition written by transactions lies past its last
    record (commit/abort markers): the follower's position still reaches it."""
    source, sink = f"{unique_name}-in", f"{unique_name}-out"
    log = await backend.open()
    await log.create_topics({source: 1, sink: 1})
    await log.publish(out(source, "job", "cmd"))
    consumer = await member(log, unique_name, source)
    [cmd] = await drain(consumer, 1)
    with pytest.raises(Boom):
        async with consumer.transaction() as tx:
            await tx.publish(out(sink, "job", "aborted"))
            raise Boom
    async with consumer.transaction() as tx:
        await tx.publish(out(sink, "job", "done"))
        tx.commit_offsets({cmd.tp: cmd.offset + 1})
    await consumer.stop()
    follower = log.follower([sink])
    await follower.start()
    try:
        ends = await follower.end_offsets()
        got = await follow_until_caught_up(follower, ends)
        assert [r.value for r in got] == [b"done"]
        tp = TopicPartition(sink, 0)
        assert await follower.position(tp) == ends[tp] >= got[-1].offset + 1
        if backend.name != "embedded":  # on Kafka, markers follow both transactions' records
            assert ends[tp] > got[-1].offset + 1
    finally:
        await follower.stop()
