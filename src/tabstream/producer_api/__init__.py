"""The REST API: app factory, auth, one router per resource. Reads the projection through
``JobReadModel``; writes only to the event log."""

from tabstream.producer_api.api_topics import ApiTopics
from tabstream.producer_api.app import create_app
from tabstream.producer_api.context import ApiContext, ApiLimits
from tabstream.producer_api.readmodel import JobReadModel, Page

__all__ = ["ApiContext", "ApiLimits", "ApiTopics", "JobReadModel", "Page", "create_app"]
