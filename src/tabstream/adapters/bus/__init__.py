"""EventLog port and its backends (``embedded`` SQLite, ``kafka`` aiokafka)."""

from tabstream.adapters.bus.port import (
    BusUnavailable,
    EventLog,
    GroupConsumer,
    Headers,
    LogFollower,
    OutgoingRecord,
    Position,
    Record,
    TopicPartition,
    Transaction,
)

__all__ = [
    "BusUnavailable",
    "EventLog",
    "GroupConsumer",
    "Headers",
    "LogFollower",
    "OutgoingRecord",
    "Position",
    "Record",
    "TopicPartition",
    "Transaction",
]
