"""tabstream: event-driven tabular AutoML training service."""

__version__ = "0.1.0"
