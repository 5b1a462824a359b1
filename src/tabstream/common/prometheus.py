"""Prometheus metrics (prometheus-client), one registry per process.

``ApiMetrics`` (API process): run submissions by outcome, jobs by status, job and trial
durations (fed by the projection as it folds ``TrialCompleted`` / ``JobCompleted``), consumer
lag per partition and projection lag (refreshed on scrape). ``GpuMemoryCollector`` (worker
process): GPU memory of the pinned device, read with ``nvidia-smi`` (no CUDA in the worker).
Nothing here imports the API, the projection or the worker: the composition root passes the
sources in.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tabstream.schemas.events import Envelope

StatusCounts = Callable[[], Mapping[str, int]]
LagSource = Callable[[], Awaitable[Mapping[Any, int]]]
DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 4 * 3600)
JOB_STATUSES = ("pending", "running", "completed", "failed", "cancelled")
REJECT_REASONS = {
    400: "invalid",
    401: "unauthorized",
    404: "dataset_not_found",
    409: "idempotency_conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    503: "log_unavailable",
}
_JOBS_REMEMBERED = 10_000


class ApiMetrics:
    """The API process's metrics; ``refresh`` pulls the gauges from their sources."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = reg = registry or CollectorRegistry()
        self.runs_submitted = Counter(
            "tabstream_runs_submitted", "POST /v1/trainer/run requests", registry=reg
        )
        self.runs_accepted = Counter(
            "tabstream_runs_accepted", "runs acknowledged by the log (202)", registry=reg
        )
        self.runs_rejected = Counter(
            "tabstream_runs_rejected", "runs refused, by reason", ["reason"], registry=reg
        )
        self.jobs = Gauge("tabstream_jobs", "jobs by status (projection)", ["status"], registry=reg)
        self.trial_seconds = Histogram(
            "tabstream_trial_duration_seconds",
            "trial fit+predict time, by family and device",
            ["family", "device"],
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self.job_seconds = Histogram(
            "tabstream_job_duration_seconds",
            "completed job duration, by families and device",
            ["family", "device"],
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self.consumer_lag = Gauge(
            "tabstream_consumer_lag_records",
            "records not yet consumed, per partition",
            ["consumer", "topic", "partition"],
            registry=reg,
        )
        self.projection_lag = Gauge(
            "tabstream_projection_lag_records",
            "records not yet folded (all partitions)",
            registry=reg,
        )
        self.events_applied = Counter(
            "tabstream_projection_events",
            "events folded by the projection, by type",
            ["type"],
            registry=reg,
        )
        self.unshowable = Counter(
            "tabstream_read_model_unshowable",
            "read-model rows shown degraded or left out (events older than today's checks)",
            ["kind"],
            registry=reg,
        )
        self._status_counts: StatusCounts | None = None
        self._lag: LagSource | None = None
        self._started: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def sources(self, status_counts: StatusCounts, projection_lag: LagSource) -> None:
        """Where ``refresh`` reads jobs by status and the projection's per-partition lag."""
        self._status_counts, self._lag = status_counts, projection_lag

    # -- runs --------------------------------------------------------------------------------

    def run_outcome(self, status_code: int) -> None:
        """Count one POST /v1/trainer/run answer."""
        self.runs_submitted.inc()
        if status_code == 202:
            self.runs_accepted.inc()
        else:
            reason = REJECT_REASONS.get(status_code, "error" if status_code >= 500 else "other")
            self.runs_rejected.labels(reason=reason).inc()

    # -- events (called by the projection after each committed batch) ------------------------

    def observe_event(self, env: Envelope) -> None:
        """Feed the duration histograms from folded events."""
        p: Any = env.payload
        self.events_applied.labels(type=env.type).inc()
        if env.type == "JobStarted":
            families = "+".join(sorted(p.model_types)) or "default"
            self._remember(str(p.job_id), (families, p.device))
        elif env.type == "TrialCompleted":
            seconds = p.fit_seconds + p.predict_seconds
            self.trial_seconds.labels(family=p.family, device=p.device).observe(seconds)
        elif env.type == "JobCompleted":
            family, device = self._started.pop(str(p.job_id), ("unknown", "unknown"))
            self.job_seconds.labels(family=family, device=device).observe(p.duration_s)

    def _remember(self, job_id: str, value: tuple[str, str]) -> None:
        self._started[job_id] = value
        while len(self._started) > _JOBS_REMEMBERED:
            self._started.popitem(last=False)

    # -- scrape ------------------------------------------------------------------------------

    async def refresh(self, timeout_s: float = 3.0) -> None:
        """Update jobs by status and the lag gauges (a source that fails is skipped)."""
        if self._status_counts is not None:
            counts = self._status_counts()
            for status in {*JOB_STATUSES, *counts}:
                self.jobs.labels(status=status).set(counts.get(status, 0))
        if self._lag is not None:
            try:
                async with asyncio.timeout(timeout_s):
                    lag = await self._lag()
            except Exception:
                return
            for tp, value in lag.items():
                topic, partition = tp
                labels = {"consumer": "projection", "topic": topic, "partition": str(partition)}
                self.consumer_lag.labels(**labels).set(value)
            self.projection_lag.set(sum(lag.values()))

    async def render(self) -> tuple[bytes, str]:
        """(body, content type) of a scrape, after a refresh."""
        await self.refresh()
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


async def serve_metrics(
    render: Callable[[], Awaitable[tuple[bytes, str]]], host: str, port: int
) -> None:
    """Serve ``GET /metrics`` on ``host:port`` (a minimal HTTP/1.0 server) until cancelled."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                request = await reader.readuntil(b"\r\n\r\n")
                method, path = [*request.split(b" ", 2), b"", b""][:2]
                if method == b"GET" and path.split(b"?")[0] == b"/metrics":
                    body, content_type = await render()
                    status = b"200 OK"
                else:
                    body, content_type, status = b"not found\n", "text/plain", b"404 Not Found"
                head = b"HTTP/1.0 " + status + b"\r\nContent-Type: " + content_type.encode()
                head += b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
                writer.write(head + body)
                await writer.drain()
        except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port)
    async with server:
        await server.serve_forever()


class GpuMemoryCollector(Collector):
    """``tabstream_worker_gpu_memory_bytes{worker,gpu,kind=used|total}`` via nvidia-smi."""

    def __init__(self, worker: str, gpu: int) -> None:
        self.worker, self.gpu = worker, gpu

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "tabstream_worker_gpu_memory_bytes",
            "GPU memory of the worker's device",
            labels=["worker", "gpu", "kind"],
        )
        for kind, value in gpu_memory(self.gpu).items():
            family.add_metric([self.worker, str(self.gpu), kind], value)
        yield family


def gpu_memory(gpu: int) -> dict[str, float]:
    """{"used": bytes, "total": bytes} of a GPU from nvidia-smi ({} when unavailable)."""
    query = ["nvidia-smi", "--query-gpu=memory.used,memory.total", "--format=csv,noheader,nounits"]
    try:
        done = subprocess.run(
            [*query, "-i", str(gpu)], capture_output=True, text=True, timeout=5, check=True
        )
        used, total = (float(v) * 1024 * 1024 for v in done.stdout.strip().split(","))
    except (OSError, subprocess.SubprocessError, ValueError):
        return {}
    return {"used": used, "total": total}


def worker_registry(worker: str, gpu: int | None) -> CollectorRegistry:
    """The worker process's registry (GPU memory when pinned to a GPU)."""
    registry = CollectorRegistry()
    if gpu is not None:
        registry.register(GpuMemoryCollector(worker, gpu))
    return registry
