"""The worker: consumer-group slots that run jobs in child processes (see ``Worker``)."""

from tabstream.consumer.config import WorkerConfig
from tabstream.consumer.topics import WorkerTopics
from tabstream.consumer.worker import Worker

__all__ = ["Worker", "WorkerConfig", "WorkerTopics"]
