"""The real S3-compatible test server (``scripts/s3.sh``, started by ``make test`` through
``scripts/with-s3.sh``): where it is, how to reach it, and the session check that s3-marked
tests fail (never skip) when it is absent."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs
import pytest

ROOT = Path(__file__).resolve().parents[2]
S3_SCRIPT = ROOT / "scripts" / "s3.sh"
REGION = "us-east-1"
# scripts/s3.sh's defaults; with-s3.sh exports the values it started the server with.
DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY = "tabstream-test", "tabstream-test-secret-key"


@dataclass(frozen=True)
class S3Server:
    """One S3-compatible server on loopback, its bucket and its test credentials."""

    address: str  # host:port
    bucket: str = "tabstream"
    access_key: str = DEFAULT_ACCESS_KEY
    secret_key: str = DEFAULT_SECRET_KEY

    @property
    def endpoint(self) -> str:
        return f"http://{self.address}"

    def filesystem(self) -> pafs.S3FileSystem:
        """A pyarrow client signed with the test credentials (to look into the bucket)."""
        return pafs.S3FileSystem(
            access_key=self.access_key,
            secret_key=self.secret_key,
            endpoint_override=self.address,
            scheme="http",
            region=REGION,
        )

    def fresh_prefix(self) -> str:
        """A prefix no other test uses: ``bucket/t<hex>``."""
        return f"{self.bucket}/t{uuid.uuid4().hex[:12]}"

    def env(self, artifacts_uri: str) -> dict[str, str]:
        """What a tabstream process needs to keep its artifacts at ``artifacts_uri``."""
        return {
            "TABSTREAM_ARTIFACTS_URI": artifacts_uri,
            "TABSTREAM_S3_ENDPOINT": self.endpoint,
            "TABSTREAM_S3_REGION": REGION,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }


def s3_server_or_none() -> S3Server | None:
    """The server named by TABSTREAM_TEST_S3 (``host:port``), if any."""
    address = os.environ.get("TABSTREAM_TEST_S3")
    if not address:
        return None
    return S3Server(
        address,
        os.environ.get("TABSTREAM_TEST_S3_BUCKET") or "tabstream",
        os.environ.get("TABSTREAM_TEST_S3_ACCESS_KEY") or DEFAULT_ACCESS_KEY,
        os.environ.get("TABSTREAM_TEST_S3_SECRET_KEY") or DEFAULT_SECRET_KEY,
    )


def _answers(address: str) -> bool:
    host, _, port = address.partition(":")
    try:
        with socket.create_connection((host, int(port or 9000)), timeout=3):
            return True
    except OSError:
        return False


def require_s3(items: list[pytest.Item]) -> None:
    """A usage error when s3-marked tests are selected but no test server answers."""
    if not any(item.get_closest_marker("s3") for item in items):
        return
    server = s3_server_or_none()
    if server is None:
        raise pytest.UsageError(
            "s3-marked tests are selected but TABSTREAM_TEST_S3 is unset: run `make test` "
            "(it starts an S3 server) or deselect them with -m 'not s3'"
        )
    if not _answers(server.address):
        raise pytest.UsageError(
            f"s3-marked tests are selected but no S3 server answers at {server.address}"
        )


@dataclass(frozen=True)
class OwnS3Server:
    """A second server run by ``scripts/s3.sh`` for one test, on its own port and with its data
    kept in a folder of the test's, so that the test can stop and restart it."""

    server: S3Server
    data_dir: Path

    def _script(self, command: str) -> None:
        port = self.server.address.rpartition(":")[2]
        env = {
            **os.environ,
            "S3_PORT": port,
            "S3_BUCKET": self.server.bucket,
            "S3_ACCESS_KEY": self.server.access_key,
            "S3_SECRET_KEY": self.server.secret_key,
            "S3_DATA_DIR": str(self.data_dir),
        }
        subprocess.run([str(S3_SCRIPT), command], env=env, check=True, timeout=120)

    def start(self) -> None:
        self._script("start")

    def stop(self) -> None:
        self._script("stop")
