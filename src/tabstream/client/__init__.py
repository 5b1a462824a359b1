"""The Python SDK over the REST API (``Client``), its I/O helpers and the filter-expression
parser the CLI uses. ``from tabstream.client import Client`` is the public entry."""

from tabstream.client.sdk import ApiError, Client, Job, JobFailed, Model, Predictions

__all__ = ["ApiError", "Client", "Job", "JobFailed", "Model", "Predictions"]
