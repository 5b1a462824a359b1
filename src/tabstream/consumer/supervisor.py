"""Runs one job attempt in a child process and streams its protocol lines back."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from tabstream.common.logs import get_logger
from tabstream.consumer.protocol import ChildLine, parse_line
from tabstream.schemas.events import EventPayload, JobCompleted

_log = get_logger(__name__)
LINE_LIMIT = 64 * 1024 * 1024
OnEvent = Callable[[EventPayload], Awaitable[None]]


@dataclass(frozen=True)
class ChildOutcome:
    """How an attempt ended: ``result``, ``error``, ``cancelled``, ``crashed`` or ``stopped``
    (the worker stopped it: cancel, timeout, shutdown)."""

    kind: str
    result: JobCompleted | None = None
    reason: str = "training_error"
    error: str = ""


async def run_child(
    argv: Sequence[str],
    env: Mapping[str, str],
    spec: bytes,
    on_event: OnEvent,
    stop: asyncio.Event,
    grace_s: float = 2.0,
) -> ChildOutcome:
    """Start ``argv`` with ``spec`` on stdin; forward events; stop it when ``stop`` is set."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=dict(env),
        limit=LINE_LIMIT,
        start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        proc.stdin.write(spec)
        await proc.stdin.drain()
    reader = asyncio.create_task(_read(proc.stdout, on_event))
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            await terminate(proc, grace_s)
        final = await reader
    finally:
        stopper.cancel()
        if proc.returncode is None:
            await terminate(proc, grace_s)
        proc.stdin.close()
    code = await proc.wait()
    if stop.is_set():
        return ChildOutcome("stopped")
    return _outcome(final, code)


async def _read(stdout: asyncio.StreamReader, on_event: OnEvent) -> ChildLine | None:
    final: ChildLine | None = None
    async for raw in stdout:
        if not raw.strip():
            continue
        try:
            line = parse_line(raw)
        except ValueError as exc:
            _log.warning("bad line from child; ignored", error=str(exc)[:300])
            continue
        if line.kind == "event" and line.payload is not None:
            await on_event(line.payload)
        elif final is None:
            final = line
    return final


def _outcome(final: ChildLine | None, code: int) -> ChildOutcome:
    if final is None:
        how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return ChildOutcome("crashed", error=f"training process {how} without a result")
    if final.kind == "result" and isinstance(final.payload, JobCompleted):
        return ChildOutcome("result", result=final.payload)
    if final.kind == "cancelled":
        return ChildOutcome("cancelled")
    return ChildOutcome("error", reason=final.reason, error=final.error)


async def terminate(proc: asyncio.subprocess.Process, grace_s: float) -> None:
    """SIGTERM the child's process group, SIGKILL it after ``grace_s``."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            import os

            os.killpg(proc.pid, sig)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), wait_s)
