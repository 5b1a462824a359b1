"""A client written against the reference API works end to end unchanged: against
``tabstream up`` (embedded log) and against an API and a worker on Apache Kafka."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.conftest import _wait_ready, free_port, start_server, stop
from tests.reference.client import ReferenceClient
from tests.reference.flow import run_reference_flow

pytestmark = pytest.mark.slow


def test_reference_flow_on_tabstream_up(tmp_path: Path) -> None:
    server, proc = start_server(tmp_path, {"TABSTREAM_FAMILY_THREADS": "2"})
    try:
        run_reference_flow(ReferenceClient(server.url, server.token))
    finally:
        stop(proc)


@pytest.fixture
def kafka_deployment(
    tmp_path: Path, kafka_bootstrap: str, unique_name: str
) -> Iterator[tuple[str, str]]:
    """``tabstream api`` and ``tabstream worker`` processes on the test broker."""
    token = secrets.token_urlsafe(32)
    env = {
        **os.environ,
        "TABSTREAM_API_TOKENS": f"{token}=acme",
        "TABSTREAM_TOPIC_PREFIX": unique_name,
        "TABSTREAM_FAMILY_THREADS": "2",
        "TABSTREAM_LOG_FORMAT": "json",
    }
    port, data = free_port(), tmp_path / "data"
    common = ["--bus", f"kafka://{kafka_bootstrap}", "--data-dir", str(data)]
    cli = [sys.executable, "-m", "tabstream.cli"]
    api_log, worker_log = tmp_path / "api.log", tmp_path / "worker.log"
    with api_log.open("wb") as out:
        api = subprocess.Popen(
            [*cli, "api", "--port", str(port), *common],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    with worker_log.open("wb") as out:
        worker = subprocess.Popen(
            [*cli, "worker", *common], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, api, api_log)
        yield url, token
    finally:
        stop(worker)
        stop(api)


@pytest.mark.kafka
def test_reference_flow_on_kafka(kafka_deployment: tuple[str, str]) -> None:
    url, token = kafka_deployment
    run_reference_flow(ReferenceClient(url, token))
