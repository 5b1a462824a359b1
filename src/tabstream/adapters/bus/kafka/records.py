"""Conversions between aiokafka's types and the port's."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import repeat
from typing import Any

from aiokafka import TopicPartition as KafkaTP

from tabstream.adapters.bus.port import Record, TopicPartition

# Replay builds one Record per message: ``tuple.__new__`` fills the named tuple without
# ``Record.__new__``'s argument handling (see ``port.Record``).
_new_tuple = tuple.__new__


def to_record(message: Any) -> Record:
    """Convert an aiokafka ``ConsumerRecord`` to a port ``Record`` (hot path on replay)."""
    key, headers = message.key, message.headers
    return _new_tuple(
        Record,
        (
            message.topic,
            message.partition,
            message.offset,
            None if key is None else key.decode(),
            message.value,
            tuple(headers) if headers else (),
            message.timestamp,
        ),
    )


def to_records(messages: list[Any]) -> list[Record]:
    """Convert a fetched list of ``ConsumerRecord``s, emptying it as it goes (hot path on replay).

    Each ``ConsumerRecord`` is released as soon as its ``Record`` exists, so the number of live
    objects stays flat: converting a full batch in place would double it and set off the
    cyclic GC many times per batch, which costs more than the conversion itself.
    """
    messages.reverse()
    return list(map(to_record, map(messages.pop, repeat(-1, len(messages)))))


def kafka_tp(tp: TopicPartition) -> KafkaTP:
    """The aiokafka ``TopicPartition`` of a port one."""
    return KafkaTP(tp.topic, tp.partition)


def port_tp(tp: KafkaTP) -> TopicPartition:
    """The port ``TopicPartition`` of an aiokafka one."""
    return TopicPartition(tp.topic, tp.partition)


def kafka_offsets(offsets: Mapping[TopicPartition, int]) -> dict[KafkaTP, int]:
    """Offsets keyed by aiokafka ``TopicPartition``s."""
    return {kafka_tp(tp): int(o) for tp, o in offsets.items()}
