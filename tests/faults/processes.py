"""Worker processes for fault tests: start, find their children, kill, collect logs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

_ASSIGNMENT = re.compile(r"assignment\s+partitions=\[([0-9, ]*)\] slot=(\S+)")
RUN_WORKER = str(Path(__file__).with_name("run_worker.py"))
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class WorkerProcess:
    """A ``tabstream worker`` subprocess whose stderr (JSON logs) goes to a file."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    name: str = ""
    _logs: list[dict[str, object]] = field(default_factory=list)

    def logs(self) -> list[dict[str, object]]:
        """Parsed JSON log lines so far."""
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def assigned(self) -> dict[str, list[int]]:
        """Latest assignment per slot."""
        latest: dict[str, list[int]] = {}
        for entry in self.logs():
            if entry.get("event") == "assignment":
                latest[str(entry["slot"])] = list(entry["partitions"])  # type: ignore[call-overload]
        for match in _ASSIGNMENT.finditer(self.log_path.read_text(errors="replace")):
            parts = [int(p) for p in match.group(1).split(",") if p.strip()]
            latest[match.group(2)] = parts
        return latest

    def children(self) -> list[int]:
        """PIDs whose parent is this worker (its training processes)."""
        return children_of(self.proc.pid)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the worker only."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self) -> None:
        """Kill the worker and any child left behind."""
        kids = self.children()
        self.kill()
        self.proc.wait(10)
        for pid in kids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry.name))
    return out


def start_worker(
    tmp: Path,
    name: str,
    *args: str,
    mode: str = "real",
    seconds: float = 0.0,
    env: dict[str, str] | None = None,
) -> WorkerProcess:
    """Start ``tabstream worker ARGS`` (with a fake child unless ``mode`` is ``real``)."""
    log_path = tmp / f"{name}.log"
    full_env = {**os.environ, "TABSTREAM_LOG_FORMAT": "json", **(env or {})}
    cmd = [sys.executable, RUN_WORKER, mode, str(seconds), *args]
    with log_path.open("wb") as err:
        proc = subprocess.Popen(cmd, stdout=err, stderr=subprocess.STDOUT, env=full_env, cwd=ROOT)
    return WorkerProcess(proc, log_path, name)


async def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``predicate()`` every 0.2 s; AssertionError naming ``what`` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)
