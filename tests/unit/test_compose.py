"""compose.yaml and the Dockerfile: services, healthchecks, GPU reservation, start order.

With the docker compose plugin present the file is rendered by ``docker compose config``
(which needs no engine); without it, PyYAML parses it (anchors and merge keys resolved)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ENV = {
    "TABSTREAM_SECRET_KEY": "k" * 40,
    "TABSTREAM_API_TOKENS": "t" * 32 + "=acme",
    "S3_ACCESS_KEY": "tabstream",
    "S3_SECRET_KEY": "s" * 40,
}
TABSTREAM_SERVICES = ("api", "worker-gpu-0", "worker-cpu")


def _compose_plugin() -> bool:
    if shutil.which("docker") is None:
        return False
    done = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    return done.returncode == 0


def load_compose() -> dict[str, Any]:
    """The rendered compose model (docker compose config, else PyYAML)."""
    path = ROOT / "compose.yaml"
    if _compose_plugin():
        done = subprocess.run(
            ["docker", "compose", "-f", str(path), "config", "--format", "json"],
            capture_output=True, text=True, timeout=60, env={**ENV, "PATH": "/usr/bin:/bin"},
            check=True,
        )  # fmt: skip
        return dict(json.loads(done.stdout))
    return dict(yaml.safe_load(path.read_text()))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def test_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka", "topic-init", "s3", "bucket-init", *TABSTREAM_SERVICES} <= set(services)
    assert services["kafka"]["image"] == "apache/kafka:4.1.1"
    kafka_env = services["kafka"]["environment"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name in ("api", "worker-gpu-0", "worker-cpu"):
        env = services[name]["environment"]
        assert env["TABSTREAM_BUS"] == "kafka://kafka:9092", name
        assert "tabstream" in " ".join(services[name]["command"])
    assert "worker" in services["worker-gpu-0"]["command"]
    assert "--gpu" in services["worker-gpu-0"]["command"]


def test_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "kafka-broker-api-versions" in str(services["kafka"]["healthcheck"]["test"])
    assert "/readyz" in str(services["api"]["healthcheck"]["test"])


def test_gpu_reservation(compose: dict[str, Any]) -> None:
    (device,) = compose["services"]["worker-gpu-0"]["deploy"]["resources"]["reservations"][
        "devices"
    ]
    assert device["driver"] == "nvidia"
    assert device["device_ids"] == ["0"]
    assert device["capabilities"] == ["gpu"]
    assert "deploy" not in compose["services"]["worker-cpu"]


def test_start_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["topic-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    api = services["api"]["depends_on"]
    assert api["kafka"]["condition"] == "service_healthy"
    assert api["topic-init"]["condition"] == "service_completed_successfully"
    assert api["bucket-init"]["condition"] == "service_completed_successfully"
    assert services["bucket-init"]["depends_on"]["s3"]["condition"] == "service_healthy"
    for worker in ("worker-gpu-0", "worker-cpu"):
        assert services[worker]["depends_on"]["api"]["condition"] == "service_healthy"
        assert services[worker]["depends_on"]["kafka"]["condition"] == "service_healthy"
        bucket = services[worker]["depends_on"]["bucket-init"]["condition"]
        assert bucket == "service_completed_successfully"


def test_artifacts_live_in_the_s3_service(compose: dict[str, Any]) -> None:
    """Every tabstream service keeps its artifacts in the compose S3 store (no shared volume,
    so the services may run on several hosts), signing with the store's own credentials."""
    services = compose["services"]
    s3 = services["s3"]
    assert s3["image"].startswith("andrewgaul/s3proxy:")
    s3_env = s3["environment"]
    assert s3_env["S3PROXY_ENDPOINT"] == "http://0.0.0.0:9000"
    assert s3_env["JCLOUDS_PROVIDER"] == "filesystem-nio2"
    assert "s3-data" in compose["volumes"] and "artifacts" not in compose["volumes"]
    buckets = set()
    for name in TABSTREAM_SERVICES:
        env = services[name]["environment"]
        assert env["TABSTREAM_ARTIFACTS_URI"].startswith("s3://"), name
        buckets.add(env["TABSTREAM_ARTIFACTS_URI"].removeprefix("s3://").split("/")[0])
        assert env["TABSTREAM_S3_ENDPOINT"] == "http://s3:9000", name
        assert env["AWS_ACCESS_KEY_ID"] == s3_env["S3PROXY_IDENTITY"], name
        assert env["AWS_SECRET_ACCESS_KEY"] == s3_env["S3PROXY_CREDENTIAL"], name
        assert "/artifacts" not in json.dumps(services[name].get("volumes", [])), name
    (bucket,) = buckets
    init = services["bucket-init"]
    assert f'create_dir("{bucket}")' in " ".join(init["command"])
    assert init["environment"]["AWS_ACCESS_KEY_ID"] == s3_env["S3PROXY_IDENTITY"]


def test_healthcheck_of_the_s3_store(compose: dict[str, Any]) -> None:
    assert "/dev/tcp/127.0.0.1/9000" in str(compose["services"]["s3"]["healthcheck"]["test"])


def test_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert "pip install ." in text
