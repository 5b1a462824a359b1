"""A live ``tabstream up`` (subprocess, embedded log, free port, temporary data dir) shared by
the CLI, SDK and metrics tests, plus a tiny dataset and one completed tiny job."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

STARTUP_S = 60.0
TINY_RUN = {"model_types": ["xgboost"], "n_trials": 2, "n_splits": 2}


@dataclass(frozen=True)
class Server:
    """A running server: its URL, token, data dir and log file."""

    url: str
    token: str
    data_dir: Path
    log_path: Path

    @property
    def env(self) -> dict[str, str]:
        """Environment for CLI subprocesses pointing at this server."""
        return {**os.environ, "TABSTREAM_URL": self.url, "TABSTREAM_TOKEN": self.token}

    def http(self) -> httpx.Client:
        """An authenticated httpx client."""
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tabstream up exited: {log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"tabstream up not ready: {log_path.read_text()[-3000:]}")


def start_server(tmp: Path, extra_env: dict[str, str] | None = None) -> tuple[Server, Any]:
    """Start ``tabstream up`` in ``tmp``; returns the Server and the process."""
    token = secrets.token_urlsafe(32)
    port = free_port()
    env = {
        **os.environ,
        "TABSTREAM_API_TOKENS": f"{token}=acme",
        "TABSTREAM_LOG_FORMAT": "json",
        **(extra_env or {}),
    }
    env.pop("TABSTREAM_TOPIC_PREFIX", None)
    log_path = tmp / "server.log"
    argv = [sys.executable, "-m", "tabstream.cli", "up", "--port", str(port)]
    argv += ["--data-dir", str(tmp / "data")]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc, log_path)
    except BaseException:
        stop(proc)
        raise
    return Server(url, token, tmp / "data", log_path), proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after a grace period."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One live server for the session."""
    running, proc = start_server(tmp_path_factory.mktemp("live"))
    try:
        yield running
    finally:
        stop(proc)


def tiny_frame(rows: int = 160, seed: int = 0) -> pd.DataFrame:
    """A small binary-classification table with a numeric, a categorical and a date column."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=rows)
    city = rng.choice(["Oslo", "Rome", "Lima"], size=rows)
    ts = pd.date_range("2011-01-01", periods=rows, freq="D")
    y = (x1 + (city == "Rome") + rng.normal(scale=0.5, size=rows) > 0.5).astype(int)
    return pd.DataFrame({"x1": x1, "city": city, "ts": ts.strftime("%Y-%m-%d"), "y": y})


@pytest.fixture(scope="session")
def tiny_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny table as a CSV file."""
    path = tmp_path_factory.mktemp("tiny") / "tiny.csv"
    tiny_frame().to_csv(path, index=False)
    return path
