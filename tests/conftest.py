"""Suite-wide fixtures. Kafka-marked tests need the broker named by TABSTREAM_TEST_KAFKA, and
cluster-marked tests the 3-broker cluster named by TABSTREAM_TEST_KAFKA_CLUSTER, s3-marked tests
the S3-compatible server named by TABSTREAM_TEST_S3: when such tests are selected and their
servers do not answer, the session fails instead of skipping."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest
from hypothesis import settings

from tests.helpers.s3 import S3Server, require_s3, s3_server_or_none

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


# Property tests draw the same examples in every run (no example database, no deadline that
# a loaded CI machine could miss): a red run is reproducible, never a coin toss.
settings.register_profile("deterministic", derandomize=True, database=None, deadline=None)
settings.load_profile("deterministic")


def kafka_bootstrap_or_none() -> str | None:
    """The test broker's bootstrap address from the environment, if any."""
    return os.environ.get("TABSTREAM_TEST_KAFKA") or None


def kafka_cluster_bootstrap_or_none() -> str | None:
    """The test cluster's bootstrap list (``host:port,host:port,host:port``), if any."""
    return os.environ.get("TABSTREAM_TEST_KAFKA_CLUSTER") or None


def _answers(bootstrap: str) -> bool:
    """Whether every ``host:port`` of the comma-separated ``bootstrap`` accepts a connection."""
    for address in bootstrap.split(","):
        host, _, port = address.strip().partition(":")
        try:
            with socket.create_connection((host, int(port or 9092)), timeout=3):
                pass
        except OSError:
            return False
    return True


def _require_brokers(
    items: list[pytest.Item], marker: str, variable: str, bootstrap: str | None, how: str
) -> None:
    """A usage error when ``marker`` tests are selected but ``bootstrap`` is unset or silent."""
    if not any(item.get_closest_marker(marker) for item in items):
        return
    if bootstrap is None:
        raise pytest.UsageError(
            f"{marker}-marked tests are selected but {variable} is unset: {how} "
            f"or deselect them with -m 'not {marker}'"
        )
    if not _answers(bootstrap):
        raise pytest.UsageError(
            f"{marker}-marked tests are selected but no broker answers at {bootstrap}"
        )


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Runs after `-m` deselection: only kafka (cluster) tests that will really run need the
    broker (the cluster)."""
    how = "run `make test` (it starts a broker)"
    _require_brokers(items, "kafka", "TABSTREAM_TEST_KAFKA", kafka_bootstrap_or_none(), how)
    how = "run `make test-cluster` (it starts a 3-broker cluster)"
    cluster = kafka_cluster_bootstrap_or_none()
    _require_brokers(items, "cluster", "TABSTREAM_TEST_KAFKA_CLUSTER", cluster, how)
    require_s3(items)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """Bootstrap address of the real test broker (guaranteed by the collection hook)."""
    bootstrap = kafka_bootstrap_or_none()
    assert bootstrap, "TABSTREAM_TEST_KAFKA must be set for kafka tests"
    return bootstrap


@pytest.fixture(scope="session")
def kafka_cluster_bootstrap() -> str:
    """Bootstrap list of the real 3-broker test cluster (guaranteed by the collection hook)."""
    bootstrap = kafka_cluster_bootstrap_or_none()
    assert bootstrap, "TABSTREAM_TEST_KAFKA_CLUSTER must be set for cluster tests"
    return bootstrap


@pytest.fixture(scope="session")
def s3_server() -> S3Server:
    """The real S3-compatible test server named by TABSTREAM_TEST_S3 (s3-marked tests only:
    the collection hook guarantees it answers)."""
    server = s3_server_or_none()
    assert server, "TABSTREAM_TEST_S3 must be set for s3 tests"
    return server


@pytest.fixture
def unique_name() -> str:
    """A fresh topic/group-safe name, unique per test."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The project's benchmark datasets (../shared/data)."""
    assert SHARED_DATA.is_dir(), f"missing datasets folder {SHARED_DATA}"
    return SHARED_DATA
