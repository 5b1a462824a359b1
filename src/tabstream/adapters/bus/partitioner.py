"""Kafka's default partitioner: ``(murmur2(key) & 0x7fffffff) % partitions``.

A key lands on the same partition number in every backend, so ordering per key and
partition-level parallelism match between the embedded log and Kafka.
"""

from __future__ import annotations

import struct
from functools import lru_cache

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 (seed 0x9747b28c) as in ``org.apache.kafka.common.utils.Utils.murmur2``.

    Returns the unsigned 32-bit hash.
    """
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    tail = length & ~3
    for k in _words(tail >> 2).unpack_from(data):
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra = length & 3
    if extra >= 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


@lru_cache(maxsize=256)
def _words(count: int) -> struct.Struct:
    """Unpacks ``count`` little-endian 32-bit words."""
    return struct.Struct(f"<{count}I")


@lru_cache(maxsize=65536)
def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key`` (UTF-8) among ``partitions``."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions
