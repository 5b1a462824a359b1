"""The soak's backends from the environment ``make test`` / ``make bench`` set up:
TABSTREAM_TEST_KAFKA_CLUSTER (scripts/with-kafka-cluster.sh) and TABSTREAM_TEST_S3*
(scripts/with-s3.sh)."""

from __future__ import annotations

import os

from tests.soak.deployment import Backends


def backends_from_env() -> Backends:
    """The cluster's bootstrap list and the S3 server (AssertionError naming what is unset)."""
    cluster, s3 = (
        os.environ.get("TABSTREAM_TEST_KAFKA_CLUSTER"),
        os.environ.get("TABSTREAM_TEST_S3"),
    )
    assert cluster, "TABSTREAM_TEST_KAFKA_CLUSTER is unset: run under scripts/with-kafka-cluster.sh"
    assert s3, "TABSTREAM_TEST_S3 is unset: run under scripts/with-s3.sh"
    return Backends(
        kafka_bootstrap=cluster,
        s3_endpoint=f"http://{s3}",
        s3_bucket=os.environ.get("TABSTREAM_TEST_S3_BUCKET", "tabstream"),
        s3_access_key=os.environ.get("TABSTREAM_TEST_S3_ACCESS_KEY", "tabstream-test"),
        s3_secret_key=os.environ.get("TABSTREAM_TEST_S3_SECRET_KEY", "tabstream-test-secret-key"),
    )
