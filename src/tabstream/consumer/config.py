"""Worker configuration (built from ``WorkerSettings`` and CLI flags by the composition root)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tabstream.schemas.checks import weight_vector_count
from tabstream.schemas.run import TrainerRunRequest
from tabstream.settings import inherited_environment

CHILD_ARGV = (sys.executable, "-m", "tabstream.bootstrap.child")
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TABSTREAM_FAMILY_THREADS",
)
SECRET_VARS = ("TABSTREAM_SECRET_KEY", "TABSTREAM_API_TOKENS")
OMP_WAIT_POLICY = "PASSIVE"
"""OpenMP threads of a child (xgboost, lightgbm, torch) sleep while they wait instead of
spinning: on cores shared with other training processes, spinning made an xgboost trial ~8x
slower (51 s instead of 6.5 s for credit_g, 5 folds, 2 threads, next to a second 2-thread
fit). An operator's own ``OMP_WAIT_POLICY`` is kept."""
Decrypt = Callable[[str], dict[str, str]]


@dataclass(frozen=True)
class WorkerConfig:
    """One worker process: a pool, its slots (one job each) and how children run.

    ``shutdown_s`` bounds a stop (``TABSTREAM_SHUTDOWN_S``): whatever the broker does, the
    worker gives up on what is left of its shutdown after that long."""

    pool: str = "cpu"
    slots: int = 1
    gpu: int | None = None
    instance: str = "worker"
    static_membership: bool = False
    prefix: str = "tabstream"
    artifacts_uri: str = ""
    max_attempts: int = 3
    job_timeout_s: float | None = None
    max_poll_interval_ms: int = 300_000
    session_timeout_ms: int = 10_000
    kill_grace_s: float = 2.0
    shutdown_s: float = 10.0
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)
    child_argv: tuple[str, ...] = CHILD_ARGV
    child_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def device(self) -> str:
        """What the pipeline is told: ``cuda`` (the only visible GPU) or ``cpu``."""
        return "cuda" if self.gpu is not None else "cpu"

    @property
    def device_label(self) -> str:
        """What events report: ``cuda:<physical index>`` or ``cpu``."""
        return f"cuda:{self.gpu}" if self.gpu is not None else "cpu"

    def env_for_child(self) -> dict[str, str]:
        """The child's environment: GPU pinning, thread budget and passive OpenMP waiting set
        before it imports anything, secrets removed (the child gets decrypted headers over
        stdin only)."""
        env = inherited_environment(SECRET_VARS)
        env["CUDA_VISIBLE_DEVICES"] = "" if self.gpu is None else str(self.gpu)
        threads = str(max(1, self.cores // self.slots))
        env.update(dict.fromkeys(THREAD_VARS, threads))
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY)
        env.update(self.child_env)
        return env


def trials_total(request: TrainerRunRequest) -> int:
    """Trials the request asks for (0 when the model types are chosen by the pipeline)."""
    if not request.model_types:
        return 0
    rows = len(request.model_types) * weight_vector_count(
        len(request.metrics or []), request.grid_size
    )
    return rows * request.n_trials
