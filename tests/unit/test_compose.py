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
ENV = {"TABSTREAM_SECRET_KEY": "k" * 40, "TABSTREAM_API_TOKENS": "t" * 32 + "=acme"}


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
    assert {"kafka", "topic-init", "api", "worker-gpu-0", "worker-cpu"} <= set(services)
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
    for worker in ("worker-gpu-0", "worker-cpu"):
        assert services[worker]["depends_on"]["api"]["condition"] == "service_healthy"
        assert services[worker]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_artifacts_shared(compose: dict[str, Any]) -> None:
    assert "artifacts" in compose["volumes"]
    for name in ("api", "worker-gpu-0", "worker-cpu"):
        mounts = json.dumps(compose["services"][name]["volumes"])
        assert "/artifacts" in mounts, name
    assert "s3://" in (ROOT / "compose.yaml").read_text()


def test_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert "pip install ." in text
