"""Suite-wide fixtures. Kafka-marked tests need the broker named by TABSTREAM_TEST_KAFKA:
when such tests are selected and no broker answers, the session fails instead of skipping."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest
from hypothesis import settings

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


# Property tests draw the same examples in every run (no example database, no deadline that
# a loaded CI machine could miss): a red run is reproducible, never a coin toss.
settings.register_profile("deterministic", derandomize=True, database=None, deadline=None)
settings.load_profile("deterministic")


def kafka_bootstrap_or_none() -> str | None:
    """The test broker's bootstrap address from the environment, if any."""
    return os.environ.get("TABSTREAM_TEST_KAFKA") or None


def _answers(bootstrap: str) -> bool:
    host, _, port = bootstrap.partition(":")
    try:
        with socket.create_connection((host, int(port or 9092)), timeout=3):
            return True
    except OSError:
        return False


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Runs after `-m` deselection: only kafka tests that will really run need the broker."""
    if not any(item.get_closest_marker("kafka") for item in items):
        return
    bootstrap = kafka_bootstrap_or_none()
    if bootstrap is None:
        raise pytest.UsageError(
            "kafka-marked tests are selected but TABSTREAM_TEST_KAFKA is unset: run `make test` "
            "(it starts a broker) or deselect them with -m 'not kafka'"
        )
    if not _answers(bootstrap):
        raise pytest.UsageError(
            f"kafka-marked tests are selected but no broker answers at {bootstrap}"
        )


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """Bootstrap address of the real test broker (guaranteed by the collection hook)."""
    bootstrap = kafka_bootstrap_or_none()
    assert bootstrap, "TABSTREAM_TEST_KAFKA must be set for kafka tests"
    return bootstrap


@pytest.fixture
def unique_name() -> str:
    """A fresh topic/group-safe name, unique per test."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The project's benchmark datasets (../shared/data)."""
    assert SHARED_DATA.is_dir(), f"missing datasets folder {SHARED_DATA}"
    return SHARED_DATA
