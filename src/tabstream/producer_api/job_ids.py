"""Job ids: time-ordered UUIDs (version 7), drawn so that a burst of submissions shares a partition.

A run's command is keyed by its job id, and Kafka's partitioner maps the key to a partition.
Random ids spread a burst of submissions over every partition of the commands topic, and each
partition then costs its own record batch in the produce request, the fetch response and the
projection's commit. ``JobIdDraw`` draws ids whose key maps to one partition for a short
window, then to the next partition, like Kafka's sticky partitioner does for unkeyed records.
The key still decides the partition (murmur2, as everywhere), so per-key ordering and reading a
job's history from its key's partition hold; only which ids get drawn when changes.

Version-7 ids also start with their creation time, so the projection's primary-key index
appends instead of inserting at random places.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
import uuid
from collections import deque
from collections.abc import Callable

from tabstream.adapters.bus.partitioner import partition_for

_MS_MASK = (1 << 48) - 1
_RAND_B_MASK = (1 << 62) - 1


def uuid7(unix_ms: int | None = None, random_bits: int | None = None) -> uuid.UUID:
    """An RFC 9562 version-7 UUID: 48 bits of Unix milliseconds, then 74 random bits (taken
    from ``random_bits``, 80 bits, when given: tests draw them from a seeded generator)."""
    ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    rand = int.from_bytes(os.urandom(10), "big") if random_bits is None else random_bits
    value = (
        (ms & _MS_MASK) << 80
        | 0x7 << 76
        | (rand >> 68) << 64  # rand_a: 12 bits
        | 0b10 << 62  # the RFC variant
        | (rand & _RAND_B_MASK)
    )
    return uuid.UUID(int=value)


class JobIdDraw:
    """Draws version-7 job ids whose key maps to one partition per window, in turn.

    Ids drawn on the way that map to another partition are kept (at most ``max_spare`` per
    partition, for ``max_age_s``) and handed out in that partition's window, so a draw costs
    one id and one hash on average.
    """

    def __init__(
        self,
        partitions: int,
        *,
        window_s: float = 0.02,
        max_spare: int = 64,
        max_age_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if partitions < 1:
            raise ValueError("partitions must be ≥ 1")
        self.partitions = partitions
        self._window_s, self._max_spare, self._max_age_s = window_s, max_spare, max_age_s
        self._clock = clock
        self._spare: list[deque[tuple[float, uuid.UUID]]] = [deque() for _ in range(partitions)]

    def turn(self) -> int:
        """The partition of the current window."""
        return int(self._clock() / self._window_s) % self.partitions

    def draw(self) -> uuid.UUID:
        """A new job id whose key maps to the current window's partition."""
        if self.partitions == 1:
            return uuid7()
        now, turn = self._clock(), self.turn()
        spare = self._spare[turn]
        while spare:
            made, job_id = spare.popleft()
            if now - made <= self._max_age_s:
                return job_id
        while True:
            job_id = uuid7()
            partition = partition_for(str(job_id), self.partitions)
            if partition == turn:
                return job_id
            if len(self._spare[partition]) < self._max_spare:
                self._spare[partition].append((now, job_id))


def keyed_job_id(key: bytes, tenant: str, idempotency_key: str) -> uuid.UUID:
    """The job id of a run submitted with ``idempotency_key``: the same on every API replica
    (a name-based UUID under a namespace derived from the server's ``key``, so it cannot be
    guessed). A retry that reaches another replica before that replica's projection has seen
    the first submission then publishes a command for the same job, which workers skip once
    the job has ended, instead of starting a second job."""
    namespace = uuid.UUID(
        bytes=hmac.new(key, b"idempotency-namespace", hashlib.sha256).digest()[:16]
    )
    return uuid.uuid5(namespace, f"{tenant}\n{idempotency_key}")
