"""Security tests run against the same app as the API tests (embedded bus, temp data dir)."""

from tests.api.conftest import api

__all__ = ["api"]
