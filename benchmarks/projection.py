"""Projection rebuild benchmark: fold ~100k realistic job events from offset 0 into a fresh store.

``python -m benchmarks.projection [--events N] [--kafka host:port]`` publishes mixed job
histories (RunRequested, CancelRequested, JobStarted, TrialCompleted, RowCompleted,
ModelRegistered, JobInterrupted, terminal events) to fresh topics of each backend, then times
``tabstream.projection.rebuild`` (read, decode, fold, SQLite with offsets) and, for reference,
the same fold from in-memory records (no bus). Writes ``benchmarks/results/projection.json``
and ``projection.md``. Kafka runs when a bootstrap is given (``--kafka`` or TABSTREAM_TEST_KAFKA).
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
from collections import Counter
from pathlib import Path
from typing import Any

from tabstream.adapters.bus.embedded import EmbeddedEventLog
from tabstream.adapters.bus.kafka import KafkaEventLog
from tabstream.adapters.bus.port import EventLog, OutgoingRecord
from tabstream.projection import ProjectionStore, Topics, rebuild
from tabstream.projection.replay import decode_record, to_item
from tabstream.projection.synthetic import Synth
from tabstream.schemas import encode, headers

RESULTS = Path(__file__).resolve().parent / "results"
TARGET = 50_000
POOLS = ["cpu"]


def parse(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.projection", description=__doc__)
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=3, help="best of N rebuilds")
    p.add_argument("--window", type=int, default=2000, help="publishes in flight")
    p.add_argument("--kafka", default=os.environ.get("TABSTREAM_TEST_KAFKA"))
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


def workload(n: int, topics: Topics) -> list[OutgoingRecord]:
    """About ``n`` records of mixed job histories, each job's streams on its own topic."""
    synth, records, i = Synth(42), [], 0
    kinds = {"commands": topics.commands("cpu"), "control": topics.control, "events": topics.events}
    outcomes = ["completed"] * 6 + ["failed", "cancelled", "running"]
    while len(records) < n:
        tenant = f"tenant-{i % 5}"
        h = synth.job(
            tenant,
            uuid.uuid4(),
            rows=3,
            trials=10,
            attempts=1 + (i % 7 == 0),
            outcome=outcomes[i % len(outcomes)],
            cancel=i % 9 == 7,  # type: ignore[arg-type]
        )
        for kind, envs in h.streams.items():
            records += [
                OutgoingRecord(kinds[kind], e.aggregate_id, encode(e), headers(e)) for e in envs
            ]
        i += 1
    return records


async def publish_all(log: EventLog, records: list[OutgoingRecord], window: int) -> float:
    """Publish with ``window`` in flight (per-key order kept: one job's records in sequence)."""
    by_key: dict[str, list[OutgoingRecord]] = {}
    for r in records:
        by_key.setdefault(r.key, []).append(r)
    queue = iter(by_key.values())

    async def worker() -> None:
        for group in queue:
            for record in group:
                await log.publish(record)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(window)))
    return len(records) / (time.perf_counter() - start)


async def timed_rebuild(log: EventLog, names: list[str], repeats: int) -> dict[str, Any]:
    """Best-of rebuild throughput and the digest (identical on every repeat)."""
    rates, digests = [], set()
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            digests.add(await rebuild(log, Path(tmp) / "p.sqlite", names))
            rates.append(time.perf_counter() - start)
    assert len(digests) == 1, "rebuild is not deterministic"
    return {"seconds": min(rates), "digest": digests.pop()}


async def bench_backend(name: str, log: EventLog, args: argparse.Namespace) -> dict[str, Any]:
    """Publish the workload to fresh topics of one backend, then time rebuilds."""
    topics = Topics(f"bench-{uuid.uuid4().hex[:8]}")
    await log.start()
    try:
        await log.create_topics(topics.partition_counts(POOLS))
        records = workload(args.events, topics)
        publish_rate = await publish_all(log, records, args.window)
        result = await timed_rebuild(log, topics.projection_topics(POOLS), args.repeats)
    finally:
        await log.close()
    n = len(records)
    return {
        "backend": name,
        "events": n,
        "publish_per_s": publish_rate,
        "rebuild_s": result["seconds"],
        "rebuild_per_s": n / result["seconds"],
        "digest": result["digest"],
    }


def fold_only(records: list[OutgoingRecord], repeats: int) -> float:
    """Decode + fold + store throughput from in-memory records (no bus), best of ``repeats``."""
    from tabstream.adapters.bus.port import Record

    recs = [Record(r.topic, 0, i, r.key, r.value, r.headers) for i, r in enumerate(records)]
    best = float("inf")
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            store = ProjectionStore(Path(tmp) / "p.sqlite")
            start = time.perf_counter()
            for i in range(0, len(recs), 2000):
                store.apply_batch(to_item(decode_record(r)) for r in recs[i : i + 2000])
            best = min(best, time.perf_counter() - start)
            store.close()
    return len(recs) / best


def report(rows: list[dict[str, Any]], fold_rate: float, mix: Counter[str], args: Any) -> str:
    """The Markdown report."""
    lines = [
        "# Projection rebuild benchmark",
        "",
        f"{rows[0]['events']} events (mixed job histories over events, commands and control"
        f" topics), rebuilt from offset 0 into a fresh SQLite store, best of {args.repeats}"
        " (`rebuild` decodes and folds in a forked child while the parent reads the log and"
        " writes each batch's rows)."
        f" Target: ≥ {TARGET:,} events/s. Machine: {platform.machine()}, {os.cpu_count()} CPUs,"
        f" Python {platform.python_version()}.",
        "",
        "| backend | publish ev/s | rebuild s | rebuild ev/s | target met |",
        "|---|---:|---:|---:|---|",
    ]
    for r in rows:
        met = "yes" if r["rebuild_per_s"] >= TARGET else "no"
        lines.append(
            f"| {r['backend']} | {r['publish_per_s']:,.0f} | {r['rebuild_s']:.2f} |"
            f" {r['rebuild_per_s']:,.0f} | {met} |"
        )
    lines += [
        "",
        "Decode + fold + store alone, in one process (in-memory records, no bus, the live"
        f" store's settings, 2000 per batch): {fold_rate:,.0f} ev/s.",
        "",
        "Event mix: " + ", ".join(f"{k} {v}" for k, v in sorted(mix.items())),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the reports."""
    args = parse(argv if argv is not None else [])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        embedded = EmbeddedEventLog(Path(tmp) / "log.sqlite")
        rows.append(asyncio.run(bench_backend("embedded", embedded, args)))
    if args.kafka:
        rows.append(asyncio.run(bench_backend("kafka", KafkaEventLog(args.kafka), args)))
    records = workload(args.events, Topics())
    mix = Counter(dict(r.headers)["type"].decode() for r in records)
    fold_rate = fold_only(records, args.repeats)
    result = {
        "rows": rows,
        "fold_only_per_s": fold_rate,
        "target_per_s": TARGET,
        "event_mix": dict(mix),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "projection.json").write_text(json.dumps(result, indent=2) + "\n")
    md = report(rows, fold_rate, mix, args)
    (args.out / "projection.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
