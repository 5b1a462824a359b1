"""The embedded EventLog backend: one SQLite file for one process (see ``embedded_log.py``)."""

from tabstream.adapters.bus.embedded.embedded_log import EmbeddedEventLog

__all__ = ["EmbeddedEventLog"]
