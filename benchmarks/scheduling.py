"""Scheduling benchmark: command ack -> JobStarted latency with an idle worker (Kafka), and
jobs/minute for tiny real jobs with 1 vs 2 CPU worker slots.

"202" is measured as the broker's ack of the RunRequested (the API answers 202 right after it).
Latency jobs use an instant child (scheduling only); throughput jobs run the real pipeline
(xgboost, n_trials=1, 2 folds, 200 rows), child start-up included.

``python -m benchmarks.scheduling [--bus kafka://127.0.0.1:9092] [--latency-jobs 30] [--jobs 50]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from benchmarks._report import machine, md_table, write
from tabstream.adapters.artifacts.local import LocalArtifactStore
from tabstream.adapters.bus.embedded import EmbeddedEventLog
from tabstream.adapters.bus.kafka import KafkaEventLog
from tabstream.adapters.bus.port import EventLog, OutgoingRecord
from tabstream.consumer import Worker, WorkerConfig, WorkerTopics
from tabstream.schemas.events import Envelope, Producer, RunRequested, decode, encode, headers
from tabstream.schemas.run import TrainerRunRequest

OUT = Path(__file__).resolve().parent / "results"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "credit_g.parquet"
INSTANT_CHILD = (
    sys.executable,
    "-c",
    "import json,os,sys; s=json.loads(sys.stdin.readline()); o=os.fdopen(os.dup(1),'w');"
    "o.write(json.dumps({'kind':'result','payload':{'job_id':s['job_id'],'leaderboard':[],"
    "'duration_s':0}})+'\\n'); o.flush()",
)


def _log(bus: str, tmp: Path) -> EventLog:
    if bus == "embedded":
        return EmbeddedEventLog(tmp / "log.sqlite")
    return KafkaEventLog(bus.removeprefix("kafka://"), client_id="bench-scheduling")


async def _submit(log: EventLog, topics: WorkerTopics, dataset_id: uuid.UUID) -> str:
    job_id = uuid.uuid4()
    request = TrainerRunRequest.model_validate(
        {"dataset_id": str(dataset_id), "model_types": ["xgboost"], "n_trials": 1,
         "n_splits": 2, "task": {"task_kind": "binclass", "label_column": "creditability"}}
    )  # fmt: skip
    cmd = RunRequested(job_id=job_id, dataset_id=dataset_id, request=request, pool="cpu",
                       submitted_at=datetime.now(UTC), request_digest="b" * 64)  # fmt: skip
    env = Envelope.wrap(cmd, tenant="bench", producer=Producer(service="bench", instance="1"))
    await log.publish(OutgoingRecord(topics.commands, str(job_id), encode(env), headers(env)))
    return str(job_id)


class Watch:
    """Follows the events topic: arrival time of each job's JobStarted and terminal event."""

    def __init__(self, log: EventLog, topic: str) -> None:
        self.started: dict[str, float] = {}
        self.ended: dict[str, float] = {}
        self.task = asyncio.create_task(self._follow(log, topic))

    async def _follow(self, log: EventLog, topic: str) -> None:
        async for record in log.read(topic, to_end=False):
            env = decode(record.value)
            now = time.perf_counter()
            if env.type == "JobStarted":
                self.started.setdefault(env.aggregate_id, now)
            elif env.type in ("JobCompleted", "JobFailed", "JobCancelled"):
                self.ended.setdefault(env.aggregate_id, now)

    async def until(self, table: dict[str, float], key: str, timeout_s: float = 600) -> float:
        deadline = time.perf_counter() + timeout_s
        while key not in table:
            if time.perf_counter() > deadline:
                raise TimeoutError(key)
            await asyncio.sleep(0.002)
        return table[key]


async def _with_worker(bus: str, slots: int, argv: tuple[str, ...] | None, body: Any) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        log = _log(bus, Path(tmp))
        await log.start()
        topics = WorkerTopics(f"bench{uuid.uuid4().hex[:8]}")
        await log.create_topics(topics.partition_counts())
        store = LocalArtifactStore(Path(tmp) / "artifacts")
        dataset_id = uuid.uuid4()
        table = pq.read_table(DATA).slice(0, 200)
        store.write_parquet(f"datasets/{dataset_id}/data.parquet", table)
        extra = {"child_argv": argv} if argv else {}
        uri = (Path(tmp) / "artifacts").as_uri()
        config = WorkerConfig(slots=slots, prefix=topics.prefix, instance="bench",
                              artifacts_uri=uri, **extra)  # fmt: skip
        worker = Worker(log, config)
        await worker.start()
        watch = Watch(log, topics.events)
        try:
            await asyncio.sleep(3)  # group join
            return await body(log, topics, dataset_id, watch)
        finally:
            watch.task.cancel()
            await worker.stop()
            await log.close()


async def latency(bus: str, n: int) -> dict[str, Any]:
    """Ack -> JobStarted for ``n`` sequential jobs on an idle worker (ms)."""

    async def body(log: EventLog, topics: WorkerTopics, dataset: uuid.UUID, w: Watch) -> Any:
        out = []
        for _ in range(n):
            job = await _submit(log, topics, dataset)
            acked = time.perf_counter()
            out.append((await w.until(w.started, job) - acked) * 1000)
            await w.until(w.ended, job)
        return out

    ms = sorted(await _with_worker(bus, 1, INSTANT_CHILD, body))
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return {"jobs": n, "p50_ms": statistics.median(ms), "p99_ms": p99, "max_ms": ms[-1]}


async def throughput(bus: str, n: int, slots: int) -> dict[str, Any]:
    """Jobs/minute for ``n`` tiny real jobs submitted at once."""

    async def body(log: EventLog, topics: WorkerTopics, dataset: uuid.UUID, w: Watch) -> Any:
        t0 = time.perf_counter()
        jobs = [await _submit(log, topics, dataset) for _ in range(n)]
        for job in jobs:
            await w.until(w.ended, job, 3600)
        return time.perf_counter() - t0

    seconds = await _with_worker(bus, slots, None, body)
    return {"slots": slots, "jobs": n, "seconds": seconds, "jobs_per_min": n * 60 / seconds}


def cluster_curve(workers: tuple[int, ...] = (1, 2, 4), jobs: int = 30) -> dict[str, Any]:
    """Jobs/min of 1, 2, 4 worker processes (one slot each) behind one API replica on the
    3-broker cluster with artifacts on the S3 server (``TABSTREAM_TEST_KAFKA_CLUSTER``,
    ``TABSTREAM_TEST_S3``): small real jobs (xgboost, 1-3 trials, 300 rows)."""
    from tests.soak.backends import backends_from_env
    from tests.soak.run import run_throughput

    backends, points = backends_from_env(), []
    for n in workers:
        with tempfile.TemporaryDirectory(prefix="curve-") as tmp:
            prefix = f"curve{n}{uuid.uuid4().hex[:6]}"
            points.append(run_throughput(Path(tmp), backends, prefix, n, jobs))
    return {"points": points, "machine": machine()}


def _curve_markdown(curve: dict[str, Any]) -> str:
    one = curve["points"][0]["jobs_per_min"]
    rows = [
        [p["workers"], p["jobs"], f"{p['jobs_per_min']:.1f}", f"{p['jobs_per_min'] / one:.2f}x"]
        for p in curve["points"]
    ]
    cpus = curve["machine"]["cpus"]
    return f"# Scheduling: worker processes on the 3-broker cluster ({cpus} cores)\n\n" + md_table(
        ["worker processes", "jobs", "jobs/min", "vs 1 worker"], rows
    )


def main(argv: list[str] | None = None) -> None:
    """Run both measurements and write results/scheduling.json + .md (and, with the cluster
    and S3 server present, the worker-process curve: results/scheduling_cluster.*)."""
    parser = argparse.ArgumentParser(prog="benchmarks.scheduling")
    default_bus = "kafka://" + os.environ.get("TABSTREAM_TEST_KAFKA", "127.0.0.1:9092")
    parser.add_argument("--bus", default=default_bus)
    parser.add_argument("--latency-jobs", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--cluster-curve-only", action="store_true")
    args = parser.parse_args(argv)
    if os.environ.get("TABSTREAM_TEST_KAFKA_CLUSTER"):
        curve = cluster_curve()
        write(OUT, "scheduling_cluster", curve, _curve_markdown(curve))
        print(_curve_markdown(curve))
    if args.cluster_curve_only:
        return
    lat = asyncio.run(latency(args.bus, args.latency_jobs))
    runs = [asyncio.run(throughput(args.bus, args.jobs, s)) for s in (1, 2)]
    data = {"bus": args.bus, "latency": lat, "throughput": runs, "machine": machine()}
    md = "# Scheduling\n\n" + md_table(
        ["measure", "value"],
        [["ack->JobStarted p50 (ms)", f"{lat['p50_ms']:.1f}"],
         ["ack->JobStarted p99 (ms)", f"{lat['p99_ms']:.1f}"],
         *[[f"jobs/min, {r['slots']} slot(s), {r['jobs']} jobs", f"{r['jobs_per_min']:.1f}"]
           for r in runs]],
    )  # fmt: skip
    write(OUT, "scheduling", data, md)
    print(md)


if __name__ == "__main__":
    main()
