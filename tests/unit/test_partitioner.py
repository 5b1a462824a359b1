"""murmur2 partitioning must match Kafka's default partitioner bit for bit."""

from __future__ import annotations

import random
import uuid

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as kafka_murmur2

from tabstream.adapters.bus.kafka.client_config import key_partitioner
from tabstream.adapters.bus.partitioner import murmur2, partition_for


def test_murmur2_matches_aiokafka_on_random_bytes() -> None:
    rng = random.Random(7)
    for _ in range(5000):
        data = rng.randbytes(rng.randint(0, 64))
        assert murmur2(data) == kafka_murmur2(data) & 0xFFFFFFFF


def test_partition_for_matches_default_partitioner() -> None:
    rng = random.Random(11)
    partitioner = DefaultPartitioner()
    for _ in range(5000):
        key = "".join(rng.choice("abcdefé-_0123456789") for _ in range(rng.randint(0, 40)))
        n = rng.randint(1, 64)
        assert partition_for(key, n) == partitioner(key.encode(), list(range(n)), [])


def test_the_kafka_logs_partitioner_picks_what_the_default_partitioner_picks() -> None:
    rng = random.Random(13)
    default = DefaultPartitioner()
    keys = [rng.randbytes(rng.randint(0, 40)) for _ in range(2000)]  # mostly invalid UTF-8
    keys += [str(uuid.UUID(int=rng.getrandbits(128))).encode() for _ in range(2000)]
    for key in keys:
        n = rng.randint(1, 64)
        partitions = list(range(n))
        assert key_partitioner(key, partitions, partitions) == default(key, partitions, partitions)
    assert key_partitioner(None, [0, 1, 2], [2]) == 2
