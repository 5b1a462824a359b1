"""A ``tabstream worker`` process given SIGTERM while its broker is down exits within
TABSTREAM_SHUTDOWN_S (it used to retry the connection forever and never exit)."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.faults.processes import WorkerProcess, start_worker, wait_until

SHUTDOWN_S = 2.0
MARGIN_S = 6.0
STARTUP_S = 60.0


def free_port() -> int:
    """A loopback port where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _events(worker: WorkerProcess) -> list[object]:
    return [entry.get("event") for entry in worker.logs()]


def _exit_code_within(worker: WorkerProcess, timeout_s: float) -> int | None:
    try:
        return worker.proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        return None


async def test_sigterm_while_the_broker_is_down_exits_within_shutdown_s(tmp_path: Path) -> None:
    env = {
        "TABSTREAM_BUS": f"kafka://127.0.0.1:{free_port()}",
        "TABSTREAM_DATA_DIR": str(tmp_path / "data"),
        "TABSTREAM_SHUTDOWN_S": str(SHUTDOWN_S),
    }
    worker = start_worker(tmp_path, "down", env=env)
    try:
        await wait_until(
            lambda: "event log unavailable; retrying" in _events(worker),
            STARTUP_S,
            "the worker to report its broker unavailable",
        )
        worker.kill(signal.SIGTERM)
        began = time.monotonic()
        code = await asyncio.to_thread(_exit_code_within, worker, SHUTDOWN_S + MARGIN_S)
        took = time.monotonic() - began
    finally:
        worker.stop()
    log = worker.log_path.read_text(errors="replace")
    assert code is not None, f"still running {SHUTDOWN_S + MARGIN_S} s after SIGTERM\n{log}"
    assert code == 0, log
    assert took < SHUTDOWN_S + MARGIN_S
    assert "stopping" in _events(worker) and "worker stopped" in _events(worker), log
    assert "Fatal Python error" not in log
