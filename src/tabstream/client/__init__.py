"""The Python SDK over the REST API (``Client``), its I/O helpers and the filter-expression
parser the CLI uses. ``from tabstream.client import Client`` is the public entry."""

from tabstream.client.api_errors import ApiError, JobFailed
from tabstream.client.model_handle import Model, Predictions
from tabstream.client.sdk import Client, Job

__all__ = ["ApiError", "Client", "Job", "JobFailed", "Model", "Predictions"]
