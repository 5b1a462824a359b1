"""GPU check for the worker (run from the repo root after ``pip install -e .``):

    python scripts/gpu_check.py

1. Two children pinned with CUDA_VISIBLE_DEVICES=0 (as ``tabstream worker --gpu 0`` pins them)
   each see exactly one CUDA device.
2. Two workers pinned to GPU 0 run an xgboost job and a TabM job; their trials report cuda.
3. A CUDA OOM inside a TabM trial (a huge allocation injected into the first fit) fails that
   trial, not the worker: the job still completes and the worker runs another job after it.
Without an NVIDIA GPU it says so and exits 0. Exit 1 on any failed check. Takes < 3 minutes.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

OOM_CHILD = """
import tabstream.pipeline.families as families
fam = type(families.Families()["tabm"])
original, calls = fam.fit, []
def fit(self, *args, **kwargs):
    calls.append(1)
    if len(calls) == 1:
        import torch
        torch.empty(1 << 45, dtype=torch.uint8, device="cuda")  # 32 TiB: CUDA OOM
    return original(self, *args, **kwargs)
fam.fit = fit
from tabstream.bootstrap.child import main
main()
"""


def has_gpu() -> bool:
    """An NVIDIA GPU that torch can use."""
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def check_pinning() -> None:
    """Each pinned child sees exactly one device."""
    from tabstream.consumer import WorkerConfig

    env = WorkerConfig(pool="gpu", gpu=0, slots=1).env_for_child()
    code = "import torch; print(torch.cuda.device_count())"
    procs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, check=True) for _ in range(2)]  # fmt: skip
    counts = [p.stdout.strip() for p in procs]
    assert counts == ["1", "1"], f"pinned children see {counts} devices"
    print(f"ok  pinning: two children with CUDA_VISIBLE_DEVICES=0 see {counts} device(s)")


def run_command(job_id: uuid.UUID, dataset_id: uuid.UUID, family: str, pool: str) -> Any:
    """A RunRequested envelope for a small job of ``family``."""
    from tabstream.schemas.events import Envelope, Producer, RunRequested
    from tabstream.schemas.run import TrainerRunRequest

    request = TrainerRunRequest.model_validate(
        {"dataset_id": str(dataset_id), "model_types": [family], "n_trials": 2, "n_splits": 3,
         "task": {"task_kind": "binclass", "label_column": "creditability"}}
    )  # fmt: skip
    cmd = RunRequested(job_id=job_id, dataset_id=dataset_id, request=request, pool=pool,
                       submitted_at=datetime.now(UTC), request_digest="c" * 64)  # fmt: skip
    return Envelope.wrap(cmd, tenant="gpu-check", producer=Producer(service="gpu", instance="1"))


async def run_jobs(tmp: Path, jobs: list[str], child_argv: tuple[str, ...] | None) -> list[Any]:
    """Run ``jobs`` (family names) on two GPU-0 workers; returns every job's envelopes."""
    from tabstream.adapters.artifacts.local import LocalArtifactStore
    from tabstream.adapters.bus.embedded import EmbeddedEventLog
    from tabstream.adapters.bus.port import OutgoingRecord
    from tabstream.consumer import Worker, WorkerConfig, WorkerTopics
    from tabstream.schemas.events import decode, encode, headers

    log = EmbeddedEventLog(tmp / f"log-{uuid.uuid4().hex[:6]}.sqlite")
    await log.start()
    topics = WorkerTopics("gpucheck", "gpu")
    dataset_id = uuid.uuid4()
    sample = resources.files("tabstream.data").joinpath("credit_g.parquet").read_bytes()
    LocalArtifactStore(tmp / "artifacts").put_bytes(f"datasets/{dataset_id}/data.parquet", sample)
    extra = {"child_argv": child_argv} if child_argv else {}
    uri = (tmp / "artifacts").as_uri()
    configs = [
        WorkerConfig(pool="gpu", gpu=0, instance=f"gpu0-w{i}", prefix=topics.prefix,
                     artifacts_uri=uri, **extra)
        for i in range(2)
    ]  # fmt: skip
    workers = [Worker(log, config) for config in configs]
    for w in workers:
        await w.start()
    ids = []
    for family in jobs:
        env = run_command(uuid.uuid4(), dataset_id, family, "gpu")
        ids.append(env.aggregate_id)
        await log.publish(
            OutgoingRecord(topics.commands, env.aggregate_id, encode(env), headers(env))
        )
    deadline = time.monotonic() + 150
    try:
        while True:
            envs = [decode(r.value) async for r in log.read(topics.events)]
            ended = {
                e.aggregate_id
                for e in envs
                if e.type in ("JobCompleted", "JobFailed", "JobCancelled")
            }
            if set(ids) <= ended or time.monotonic() > deadline:
                return [[e for e in envs if e.aggregate_id == j] for j in ids]
            await asyncio.sleep(0.5)
    finally:
        for w in workers:
            await w.stop()
        await log.close()


def check_cuda_trials(tmp: Path) -> None:
    """xgboost and TabM trials run on cuda."""
    for family, envs in zip(
        ["xgboost", "tabm"], asyncio.run(run_jobs(tmp, ["xgboost", "tabm"], None)), strict=True
    ):
        kinds = [e.type for e in envs]
        assert "JobCompleted" in kinds, (
            f"{family}: {kinds} {[e.payload for e in envs if e.type == 'JobFailed']}"
        )
        devices = {e.payload.device for e in envs if e.type == "TrialCompleted"}
        assert devices and all(d.startswith("cuda") for d in devices), (
            f"{family} trials on {devices}"
        )
        print(f"ok  {family}: {kinds.count('TrialCompleted')} trials on {sorted(devices)}")


def check_oom(tmp: Path) -> None:
    """A CUDA OOM fails one trial; the job completes and the worker goes on."""
    argv = (sys.executable, "-c", OOM_CHILD)
    first, second = asyncio.run(run_jobs(tmp, ["tabm", "xgboost"], argv))
    trials = [e.payload for e in first if e.type == "TrialCompleted"]
    failed = [t for t in trials if t.state == "failed"]
    assert failed and "memory" in (failed[0].error or "").lower(), f"no OOM trial: {trials}"
    assert "JobCompleted" in [e.type for e in first], "the OOM job did not complete"
    assert "JobCompleted" in [e.type for e in second], "the worker did not go on"
    error = (failed[0].error or "")[:80]
    print(f"ok  CUDA OOM failed trial {failed[0].trial} ({error}); job and worker went on")


def main() -> int:
    """Run the checks; 0 when all pass or no GPU is present."""
    if not has_gpu():
        print("no NVIDIA GPU available: GPU checks skipped")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        try:
            check_pinning()
            check_cuda_trials(Path(tmp))
            check_oom(Path(tmp))
        except AssertionError as exc:
            print(f"FAIL {exc}")
            return 1
    print("all GPU checks passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
