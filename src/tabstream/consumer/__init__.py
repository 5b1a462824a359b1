"""The worker: consumer-group slots that run jobs in child processes (see ``Worker``)."""

from tabstream.consumer.config import WorkerConfig
from tabstream.consumer.worker import Worker
from tabstream.consumer.worker_topics import WorkerTopics

__all__ = ["Worker", "WorkerConfig", "WorkerTopics"]
