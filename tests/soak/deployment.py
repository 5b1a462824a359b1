"""A multi-process deployment on the 3-broker cluster and the S3 server: API replicas, one
standalone projection and CPU workers, each its own ``tabstream`` process, each killable."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "tabstream.cli"]


@dataclass(frozen=True)
class Backends:
    """Where the deployment's log and artifacts live."""

    kafka_bootstrap: str
    s3_endpoint: str
    s3_bucket: str
    s3_access_key: str
    s3_secret_key: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Service:
    """One ``tabstream`` process: how to (re)start it and its log file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    url: str | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=log)

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self, grace_s: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace_s``; the exit code (None: it had to be killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.kill9()
            return None

    def ready(self) -> bool:
        """The API answers /readyz (always True for non-API services that are alive)."""
        if self.proc is None or self.proc.poll() is not None:
            return False
        if self.url is None:
            return True
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


@dataclass
class Deployment:
    """``apis`` API replicas, a standalone projection and ``workers`` CPU workers."""

    root: Path
    backends: Backends
    prefix: str
    apis: int = 2
    workers: int = 3
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    services: dict[str, Service] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        b = self.backends
        return {
            **os.environ,
            "TABSTREAM_BUS": f"kafka://{b.kafka_bootstrap}",
            "TABSTREAM_TOPIC_PREFIX": self.prefix,
            "TABSTREAM_KAFKA_REPLICATION": "3",
            "TABSTREAM_KAFKA_MIN_ISR": "2",
            "TABSTREAM_ARTIFACTS_URI": f"s3://{b.s3_bucket}/{self.prefix}",
            "TABSTREAM_S3_ENDPOINT": b.s3_endpoint,
            "TABSTREAM_S3_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": b.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": b.s3_secret_key,
            "TABSTREAM_SECRET_KEY": "soak-" + "s" * 40,
            "TABSTREAM_API_TOKENS": f"{self.token}=soak",
            "TABSTREAM_FAMILY_THREADS": "1",
            "TABSTREAM_LOG_FORMAT": "json",
            "TABSTREAM_SHUTDOWN_S": "10",
        }

    def build(self) -> None:
        """Define every service (nothing starts)."""
        env = self.env()
        for i in range(self.apis):
            port = free_port()
            argv = [*CLI, "api", "--port", str(port), "--data-dir", str(self.root / f"api{i}")]
            self._add(f"api{i}", argv, env, f"http://127.0.0.1:{port}")
        self._add("projection", [*CLI, "projection", "--data-dir", str(self.root / "proj")], env)
        for i in range(self.workers):
            argv = [
                *CLI,
                "worker",
                "--instance-id",
                f"w{i}",
                "--data-dir",
                str(self.root / f"w{i}"),
            ]
            self._add(f"worker{i}", argv, env)

    def _add(self, name: str, argv: list[str], env: dict[str, str], url: str | None = None) -> None:
        self.services[name] = Service(name, argv, env, self.root / f"{name}.log", url)

    def start(self, timeout_s: float = 120) -> None:
        """Start everything and wait until every API replica is ready."""
        for service in self.services.values():
            service.start()
        for api in self.api_services():
            wait_until(api.ready, timeout_s, f"{api.name} ready ({api.log_path})")

    def api_services(self) -> list[Service]:
        return [s for n, s in self.services.items() if n.startswith("api")]

    def api_urls(self) -> list[str]:
        return [str(s.url) for s in self.api_services()]

    def stop(self) -> dict[str, int | None]:
        """Stop every service; their exit codes (None: had to be killed: hung)."""
        return {name: service.stop() for name, service in self.services.items()}


def wait_until(check: object, timeout_s: float, what: str, poll_s: float = 0.2) -> float:
    """Poll ``check()`` until true; the seconds it took (AssertionError naming ``what``)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if check():  # type: ignore[operator]
            return time.monotonic() - started
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
