"""Calls to the broker with a deadline, and starting a client without leaking it.

A timeout or a lost connection becomes ``BusUnavailable`` (the port's "could not acknowledge
in time"); any other Kafka error is a bad request and goes on unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

from tabstream.adapters.bus.port import BusUnavailable

_T = TypeVar("_T")


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the broker could not answer in time (rather than a bad request)."""
    if isinstance(exc, TimeoutError | KafkaTimeoutError | KafkaConnectionError):
        return True
    return isinstance(exc, KafkaError) and bool(getattr(exc, "retriable", False))


def no_ack() -> KafkaTimeoutError:
    """The error of a send not acknowledged in time (aiokafka's idempotent producer retries
    forever, so acks need a deadline)."""
    return KafkaTimeoutError("no acknowledgement in time")


async def bounded(what: str, timeout_s: float, call: Callable[[], Awaitable[_T]]) -> _T:
    """Await ``call()``; a timeout or a connection error becomes ``BusUnavailable``."""
    try:
        async with asyncio.timeout(timeout_s):
            return await call()
    except (TimeoutError, KafkaError) as exc:
        if unavailable(exc):
            raise BusUnavailable(f"kafka: {what} failed: {exc!r}") from exc
        raise


async def start_or_release(
    what: str,
    client: Any,
    timeout_s: float,
    release: Callable[[], Awaitable[object]] | None = None,
) -> Any:
    """Start an aiokafka ``client`` within ``timeout_s`` and return it; when starting fails
    (``BusUnavailable`` on a timeout), release it first: ``client.stop()``, or ``release()``
    where given (the admin client closes instead)."""
    try:
        await bounded(what, timeout_s, client.start)
    except BaseException:
        await (release or client.stop)()
        raise
    return client
