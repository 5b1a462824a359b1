"""One soak run: deploy, load under chaos, then check every guarantee; shared by
``tests/soak`` (a short run) and ``benchmarks/soak.py`` (200 jobs, reported)."""

from __future__ import annotations

import io
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tabstream.schemas.topics import Topics
from tests.soak.checks import group_lag, leader_node, projection_digests, terminal_counts
from tests.soak.deployment import Backends, Deployment, wait_until
from tests.soak.load import Chaos, submit_all

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "credit_g.parquet"


@dataclass(frozen=True)
class SoakConfig:
    """Size and pace of a run."""

    jobs: int = 200
    clients: int = 4
    seed: int = 7
    chaos_every_s: float = 15.0
    down_s: float = 2.0
    pace_s: float = 4.0
    """Each client's pause between two submissions: they then span the chaos."""
    finish_timeout_s: float = 1200.0


@dataclass
class SoakReport:
    """Everything a run measured and found."""

    config: SoakConfig
    seconds: float = 0.0
    accepted: int = 0
    keys_with_two_jobs: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    finished_twice: list[str] = field(default_factory=list)
    unknown_terminal: list[str] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    submit_p50_s: float = 0.0
    submit_p99_s: float = 0.0
    retries: int = 0
    recoveries: list[dict[str, Any]] = field(default_factory=list)
    chaos_errors: list[str] = field(default_factory=list)
    final_lag: int = -1
    digests: dict[str, Any] = field(default_factory=dict)
    exit_codes: dict[str, int | None] = field(default_factory=dict)

    @property
    def jobs_per_min(self) -> float:
        return 60.0 * self.accepted / self.seconds if self.seconds else 0.0


def run_soak(root: Path, backends: Backends, prefix: str, config: SoakConfig) -> SoakReport:
    """Deploy, submit ``config.jobs`` under chaos, wait for every job, check the log."""
    deployment = Deployment(root, backends, prefix)
    deployment.build()
    deployment.start()
    report = SoakReport(config)
    topics = Topics(prefix=prefix)
    try:
        _load(deployment, backends, topics, config, report)
        _verify(deployment, backends, topics, report)
    finally:
        report.exit_codes = deployment.stop()
    return report


def _load(
    deployment: Deployment,
    backends: Backends,
    topics: Topics,
    config: SoakConfig,
    report: SoakReport,
) -> None:
    dataset_id = _dataset(deployment)
    chaos = Chaos(
        deployment,
        lambda: leader_node(backends.kafka_bootstrap, topics.commands("cpu")),
        config.seed,
        config.chaos_every_s,
        config.down_s,
    )
    started = time.monotonic()
    chaos.start()
    try:
        subs = submit_all(
            deployment.api_urls(),
            deployment.token,
            dataset_id,
            config.jobs,
            config.clients,
            config.seed,
        )
        job_ids, finished = subs.job_ids(), dict[str, str]()
        wait_until(
            lambda: _all_finished(deployment, job_ids, finished, report),
            config.finish_timeout_s,
            "every accepted job to finish",
            poll_s=2.0,
        )
    finally:
        chaos.stopping.set()
        chaos.join()
    report.seconds = time.monotonic() - started
    report.accepted = len(job_ids)
    report.keys_with_two_jobs = sorted(k for k, ids in subs.accepted.items() if len(ids) > 1)
    report.submit_p50_s = statistics.median(subs.latency_s)
    report.submit_p99_s = statistics.quantiles(subs.latency_s, n=100)[98]
    report.retries = subs.retries
    report.recoveries = [r.__dict__ for r in chaos.recoveries]
    report.chaos_errors = chaos.errors
    report.lost = sorted(job_ids)  # narrowed by _verify


def _dataset(deployment: Deployment) -> str:
    sink = io.BytesIO()
    pacsv.write_csv(pq.read_table(DATA).slice(0, 300), sink)
    url = deployment.api_urls()[0]
    headers = {"Authorization": f"Bearer {deployment.token}"}
    files = {"file": ("credit_g.csv", sink.getvalue(), "text/csv")}
    r = httpx.post(f"{url}/v1/datasets", files=files, headers=headers, timeout=60)
    assert r.status_code == 201, r.text
    dataset_id = str(r.json()["dataset_id"])
    for other in deployment.api_urls():
        wait_until(lambda u=other: _seen(u, headers, dataset_id), 60, "the dataset everywhere")
    return dataset_id


def _seen(url: str, headers: dict[str, str], dataset_id: str) -> bool:
    try:
        return httpx.get(f"{url}/v1/datasets/{dataset_id}", headers=headers, timeout=5).is_success
    except httpx.HTTPError:
        return False


def _all_finished(
    deployment: Deployment, job_ids: set[str], finished: dict[str, str], report: SoakReport
) -> bool:
    """Ask a live replica for the jobs not known finished yet (``finished`` is updated)."""
    headers = {"Authorization": f"Bearer {deployment.token}"}
    for url in deployment.api_urls():
        try:
            with httpx.Client(headers=headers, timeout=10) as http:
                for job_id in sorted(job_ids - set(finished)):
                    status = http.get(f"{url}/v1/jobs/{job_id}").json().get("status")
                    if status in ("completed", "failed", "cancelled"):
                        finished[job_id] = status
            break
        except (httpx.HTTPError, ValueError):
            continue
    report.statuses = dict(sorted(Counter(finished.values()).items()))
    return len(finished) == len(job_ids)


def _verify(deployment: Deployment, backends: Backends, topics: Topics, report: SoakReport) -> None:
    accepted = set(report.lost)
    terminals = terminal_counts(backends.kafka_bootstrap, topics)
    report.lost = sorted(j for j in accepted if terminals[j] == 0)
    report.finished_twice = sorted(j for j in accepted if terminals[j] > 1)
    report.unknown_terminal = sorted(j for j in terminals if j not in accepted)
    wait_until(lambda: group_lag(backends.kafka_bootstrap, topics) == 0, 120, "lag 0", 1.0)
    report.final_lag = group_lag(backends.kafka_bootstrap, topics)
    time.sleep(3)  # every projection folds the last records
    digests = projection_digests(deployment)
    report.digests = {"live": digests.live, "rebuilt": digests.rebuilt}


def run_throughput(
    root: Path, backends: Backends, prefix: str, workers: int, jobs: int, seed: int = 11
) -> dict[str, Any]:
    """Jobs/min of ``workers`` worker processes (one API replica, no chaos): every job is
    submitted at once, the clock runs until the last one finished."""
    deployment = Deployment(root, backends, prefix, apis=1, workers=workers)
    deployment.build()
    deployment.services.pop("projection")
    deployment.start()
    try:
        dataset_id = _dataset(deployment)
        started = time.monotonic()
        subs = submit_all(deployment.api_urls(), deployment.token, dataset_id, jobs, 2, seed)
        job_ids, finished = subs.job_ids(), dict[str, str]()
        report = SoakReport(SoakConfig(jobs=jobs))
        wait_until(lambda: _all_finished(deployment, job_ids, finished, report), 1800, "jobs", 1.0)
        seconds = time.monotonic() - started
    finally:
        deployment.stop()
    return {
        "workers": workers,
        "jobs": len(job_ids),
        "seconds": round(seconds, 1),
        "jobs_per_min": round(60 * len(job_ids) / seconds, 2),
        "statuses": report.statuses,
    }
