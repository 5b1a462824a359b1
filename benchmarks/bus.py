"""Bus benchmark: publish and replay throughput of both EventLog adapters, and raw aiokafka.

``python -m benchmarks.bus [--records N] [--window W] [--kafka host:port]`` prints a table and
writes ``benchmarks/results/bus.json`` and ``bus.md``. Kafka runs when a bootstrap is given
(``--kafka`` or ``TABSTREAM_TEST_KAFKA``); the raw client uses the adapter's producer settings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tabstream.adapters.bus.embedded import EmbeddedEventLog
from tabstream.adapters.bus.kafka import KafkaEventLog
from tabstream.adapters.bus.kafka.client_config import FETCH_MAX_WAIT_MS
from tabstream.adapters.bus.port import EventLog, OutgoingRecord

RESULTS = Path(__file__).resolve().parent / "results"


def parse(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.bus", description=__doc__)
    p.add_argument("--records", type=int, default=50_000)
    p.add_argument("--window", type=int, default=2000, help="publishes in flight")
    p.add_argument("--value-bytes", type=int, default=300)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3, help="best of N runs per measurement")
    p.add_argument("--kafka", default=os.environ.get("TABSTREAM_TEST_KAFKA"))
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


async def windowed(n: int, window: int, send: Callable[[int], Awaitable[Any]]) -> float:
    """Run ``send(i)`` for i < n with at most ``window`` in flight; returns records/s."""
    todo = iter(range(n))

    async def worker() -> None:
        for i in todo:
            await send(i)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(window, n))))
    return n / (time.perf_counter() - start)


async def best(repeats: int, run: Callable[[], Awaitable[float]]) -> float:
    """The best of ``repeats`` runs."""
    return max([await run() for _ in range(repeats)])


async def interleaved(
    repeats: int, runs: Mapping[str, Callable[[], Awaitable[float]]]
) -> dict[str, float]:
    """Best of ``repeats`` for each run, alternating which goes first to spread out noise."""
    best_of = dict.fromkeys(runs, 0.0)
    names = list(runs)
    for i in range(repeats):
        for name in names if i % 2 == 0 else names[::-1]:
            best_of[name] = max(best_of[name], await runs[name]())
    return best_of


def payload(size: int) -> bytes:
    """A ~``size``-byte JSON-ish value."""
    return (b'{"type":"TrialCompleted","payload":"' + os.urandom(size).hex().encode())[:size] + b"}"


async def adapter_publish(log: EventLog, topic: str, n: int, window: int, value: bytes) -> float:
    """Adapter publish throughput."""
    records = [OutgoingRecord(topic, f"job-{i % 1000}", value) for i in range(n)]
    return await windowed(n, window, lambda i: log.publish(records[i]))


async def adapter_replay(log: EventLog, topic: str) -> float:
    """Adapter replay throughput over the whole topic."""
    start, count = time.perf_counter(), 0
    async for _ in log.read(topic):
        count += 1
    return count / (time.perf_counter() - start)


async def raw_publish(producer: Any, topic: str, n: int, window: int, value: bytes) -> float:
    """Raw aiokafka publish throughput (send, then await the ack)."""
    keys = [f"job-{i % 1000}".encode() for i in range(n)]

    async def send(i: int) -> None:
        await (await producer.send(topic, value, key=keys[i]))

    return await windowed(n, window, send)


async def adapter_replay_batches(log: EventLog, topic: str) -> float:
    """Adapter replay throughput with ``read_batches`` (one await per batch)."""
    start, count = time.perf_counter(), 0
    async for batch in log.read_batches(topic):
        for _ in batch:
            count += 1
    return count / (time.perf_counter() - start)


async def raw_replay(log: KafkaEventLog, topic: str, partitions: int) -> float:
    """Raw aiokafka replay throughput, as careful as the adapter: a group-less read_committed
    consumer with the adapter's client and fetch settings, all partitions assigned at once,
    each record visited once and counted only below its partition's end offset."""
    consumer = AIOKafkaConsumer(
        **log.config.client_kwargs(),
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=16 * 1024 * 1024,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )
    start, count = time.perf_counter(), 0
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
        left = {tp: ends[tp] for tp in tps if ends[tp] > 0}
        consumer.assign(list(left))
        for tp in left:
            consumer.seek(tp, 0)
        while left:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for tp, messages in batches.items():
                end = left.get(tp)
                if end is None:
                    continue
                for m in messages:
                    if m.offset < end:
                        count += 1
                if messages and messages[-1].offset + 1 >= end:
                    del left[tp]
                    consumer.pause(tp)
        return count / (time.perf_counter() - start)
    finally:
        await consumer.stop()


async def bench_embedded(args: argparse.Namespace, value: bytes) -> dict[str, float]:
    """Embedded log numbers (fresh file per repeat)."""
    with tempfile.TemporaryDirectory() as tmp:
        log = EmbeddedEventLog(Path(tmp) / "bench.db")
        await log.start()
        try:
            topics = [f"bench-{i}" for i in range(args.repeats)]
            await log.create_topics(dict.fromkeys(topics, args.partitions))
            rounds = iter(topics)
            pub = await best(
                args.repeats,
                lambda: adapter_publish(log, next(rounds), args.records, args.window, value),
            )
            replay = await best(args.repeats, lambda: adapter_replay(log, topics[0]))
            batches = await best(args.repeats, lambda: adapter_replay_batches(log, topics[0]))
        finally:
            await log.close()
    return {"publish_rps": pub, "replay_rps": replay, "replay_batches_rps": batches}


async def bench_kafka(args: argparse.Namespace, value: bytes) -> dict[str, dict[str, float]]:
    """Kafka adapter and raw aiokafka on the same topic, same producer settings."""
    topic = f"bench-bus-{uuid.uuid4().hex[:8]}"
    log = KafkaEventLog(args.kafka)
    await log.start()
    producer = AIOKafkaProducer(**log.config.producer_kwargs())
    await producer.start()
    try:
        await log.create_topics({topic: args.partitions})
        await adapter_publish(log, topic, 2000, args.window, value)
        await raw_publish(producer, topic, 2000, args.window, value)
        n, w = args.records, args.window
        publish = {
            "raw": lambda: raw_publish(producer, topic, n, w, value),
            "adapter": lambda: adapter_publish(log, topic, n, w, value),
        }
        replay = {
            "raw": lambda: raw_replay(log, topic, args.partitions),
            "adapter": lambda: adapter_replay(log, topic),
            "adapter_batches": lambda: adapter_replay_batches(log, topic),
        }
        pub = await interleaved(args.repeats, publish)
        rep = await interleaved(args.repeats, replay)
        out = {s: {"publish_rps": pub[s], "replay_rps": rep[s]} for s in ("adapter", "raw")}
        out["adapter"]["replay_batches_rps"] = rep["adapter_batches"]
        return out
    finally:
        await producer.stop()
        await log.close()


_RATIOS = (
    ("publish_rps", "publish_rps"),
    ("replay_rps", "replay_rps"),
    ("replay_batches_rps", "replay_rps"),
)


def report(results: dict[str, Any], out: Path) -> str:
    """Write bus.json and bus.md; returns the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "bus.json").write_text(json.dumps(results, indent=2) + "\n")
    cfg = results["config"]
    lines = [
        "# Bus benchmark",
        "",
        f"{cfg['records']} records of {cfg['value_bytes']} B, {cfg['window']} publishes in flight,"
        f" {cfg['partitions']} partitions, acks=all, best of {cfg['repeats']}."
        f" Machine: {results['machine']}.",
        "",
        "Replay: `read()` one record at a time; `read_batches()` in lists; raw: aiokafka"
        " `getmany` with the adapter's fetch settings and read_committed, every record visited.",
        "",
        "| backend | publish rec/s | replay rec/s | read_batches rec/s | publish vs raw |"
        " replay vs raw | read_batches vs raw |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    raw = results.get("kafka_raw")
    for name in ("embedded", "kafka", "kafka_raw"):
        row = results.get(name)
        if row is None:
            continue
        ratio = ["", "", ""]
        if name == "kafka" and raw:
            ratio = [f"{row[k] / raw[b]:.2f}x" for k, b in _RATIOS]
        batches = row.get("replay_batches_rps")
        lines.append(
            f"| {name} | {row['publish_rps']:,.0f} | {row['replay_rps']:,.0f} | "
            f"{'' if batches is None else f'{batches:,.0f}'} | {' | '.join(ratio)} |"
        )
    text = "\n".join(lines) + "\n"
    (out / "bus.md").write_text(text)
    return text


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """All measurements."""
    value = payload(args.value_bytes)
    results: dict[str, Any] = {
        "config": {
            "records": args.records,
            "window": args.window,
            "value_bytes": args.value_bytes,
            "partitions": args.partitions,
            "repeats": args.repeats,
        },
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "embedded": await bench_embedded(args, value),
    }
    if args.kafka:
        kafka = await bench_kafka(args, value)
        results["kafka"], results["kafka_raw"] = kafka["adapter"], kafka["raw"]
        results["ratios"] = {k: results["kafka"][k] / results["kafka_raw"][b] for k, b in _RATIOS}
    return results


def main(argv: list[str] | None = None) -> int:
    """Entry point: measure, print the table, write the reports."""
    args = parse(argv or [])
    results = asyncio.run(run(args))
    print(report(results, args.out))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
