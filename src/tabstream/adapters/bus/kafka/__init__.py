"""The Kafka EventLog backend on aiokafka (see ``kafka_log.py``)."""

from tabstream.adapters.bus.kafka.kafka_log import KafkaEventLog

__all__ = ["KafkaEventLog"]
