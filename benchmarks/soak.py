"""Soak benchmark: the guarantees past one machine, measured. On the 3-broker cluster and the S3
server, 2 API replicas, 1 standalone projection and 3 CPU worker processes take 200 small jobs
(xgboost, 1-3 trials) from 4 clients with Idempotency-Keys and retries, while a seeded chaos
loop kills -9 in turn a worker, an API replica and the commands topic's leader broker.

Needs TABSTREAM_TEST_KAFKA_CLUSTER and TABSTREAM_TEST_S3 (``make bench`` starts both).

``python -m benchmarks.soak [--jobs 200] [--seed 7]``
"""

from __future__ import annotations

import argparse
import tempfile
import uuid
from pathlib import Path
from typing import Any

from tests.soak.backends import backends_from_env
from tests.soak.run import SoakConfig, SoakReport, run_soak

from benchmarks._report import machine, md_table, write

OUT = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> None:
    """Run the soak and write ``results/soak.{json,md}``."""
    parser = argparse.ArgumentParser(prog="benchmarks.soak")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chaos-every-s", type=float, default=15.0)
    args = parser.parse_args(argv)
    config = SoakConfig(jobs=args.jobs, seed=args.seed, chaos_every_s=args.chaos_every_s)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        report = run_soak(Path(tmp), backends_from_env(), f"soak{uuid.uuid4().hex[:8]}", config)
    data = {"machine": machine(), **_data(report)}
    write(OUT, "soak", data, _markdown(report))


def _data(report: SoakReport) -> dict[str, Any]:
    data = dict(report.__dict__)
    data["config"] = report.config.__dict__
    data["jobs_per_min"] = report.jobs_per_min
    return data


def _markdown(report: SoakReport) -> str:
    c = report.config
    digests = report.digests.get("live", {})
    same = len(set(digests.values()) | set(report.digests.get("rebuilt", {}).values())) == 1
    rows = [
        ["jobs accepted (202)", report.accepted],
        ["jobs/min (submit to last terminal event, chaos included)", f"{report.jobs_per_min:.1f}"],
        ["submit p50 / p99 (s, across the faults, retries included)",
         f"{report.submit_p50_s:.2f} / {report.submit_p99_s:.2f}"],
        ["client retries (connection refused, 5xx)", report.retries],
        ["final statuses", report.statuses],
        ["jobs lost (no terminal event)", len(report.lost)],
        ["jobs finished twice", len(report.finished_twice)],
        ["keys mapped to two jobs", len(report.keys_with_two_jobs)],
        ["terminal events of unknown jobs", len(report.unknown_terminal)],
        ["consumer lag at the end", report.final_lag],
        ["3 projections == their rebuilds, all equal", same],
        ["processes that had to be killed at the end (hung)",
         [n for n, code in report.exit_codes.items() if code is None]],
    ]  # fmt: skip
    recoveries = [[r["target"], r["victim"], f"{r['recover_s']:.1f}"] for r in report.recoveries]
    return (
        f"# Soak\n\n{c.jobs} jobs from {c.clients} clients (each pausing {c.pace_s:g} s between "
        f"submissions, so that they meet the faults); chaos every {c.chaos_every_s:g} s "
        f"(down {c.down_s:g} s), seed {c.seed}; 2 API replicas, 1 standalone projection, "
        "3 CPU workers, 3-broker Kafka (RF 3, min ISR 2), S3 server.\n\n"
        + md_table(["measure", "value"], rows)
        + "\n## Recovery after each kill -9\n\nworker: until its replacement runs; api: until "
        "/readyz answers again; broker: until it is registered again.\n\n"
        + md_table(["target", "victim", "seconds"], recoveries)
        + (f"\nChaos errors: {report.chaos_errors}\n" if report.chaos_errors else "")
    )


if __name__ == "__main__":
    main()
