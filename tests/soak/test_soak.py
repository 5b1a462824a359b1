"""The soak, short: 2 API replicas, a standalone projection and 3 workers on the 3-broker cluster
and the S3 server take small jobs while a seeded chaos loop kills -9 a worker, an API replica
and the commands topic's leader broker. ``benchmarks/soak.py`` runs the long one (200 jobs)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.helpers.s3 import S3Server
from tests.soak.deployment import Backends
from tests.soak.run import SoakConfig, run_soak

pytestmark = [pytest.mark.cluster, pytest.mark.s3, pytest.mark.slow]


def test_no_job_is_lost_or_finished_twice_under_kill_9s(
    tmp_path: Path, kafka_cluster_bootstrap: str, s3_server: S3Server
) -> None:
    backends = Backends(
        kafka_cluster_bootstrap,
        s3_server.endpoint,
        s3_server.bucket,
        s3_server.access_key,
        s3_server.secret_key,
    )
    config = SoakConfig(jobs=24, clients=3, seed=5, chaos_every_s=6.0, down_s=2.0, pace_s=2.0)
    report = run_soak(tmp_path, backends, f"soak{uuid.uuid4().hex[:8]}", config)
    assert report.chaos_errors == []
    assert {r["target"] for r in report.recoveries} == {"worker", "api", "broker"}
    assert report.accepted == config.jobs and report.keys_with_two_jobs == []
    assert report.lost == [] and report.finished_twice == [] and report.unknown_terminal == []
    assert sum(report.statuses.values()) == config.jobs
    assert report.final_lag == 0
    live, rebuilt = report.digests["live"], report.digests["rebuilt"]
    assert set(live) == {"api0", "api1", "projection"} and live == rebuilt
    assert len(set(live.values())) == 1 and all(live.values())
    assert None not in report.exit_codes.values(), report.exit_codes
