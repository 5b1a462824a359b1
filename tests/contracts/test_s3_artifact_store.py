"""What the S3 artifact store adds to the contract, on the real test server: the composition
from settings, whole-object writes (no temporary keys, no directory markers), multipart blobs,
and how an unreachable server is retried, reported, and outlived across a restart."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from tabstream.adapters.artifacts import ArtifactNotFound, ArtifactStoreUnavailable
from tabstream.adapters.artifacts.s3_store import S3ArtifactStore, is_transient
from tabstream.bootstrap.child import STORE_UNAVAILABLE_EXIT
from tabstream.bootstrap.common import build_artifacts
from tabstream.settings import CommonSettings, ConfigError
from tests.helpers.s3 import OwnS3Server, S3Server

BIG = 12 * 1024 * 1024  # past pyarrow's 10 MiB part size: a multipart upload


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raw_paths(filesystem: pafs.FileSystem, prefix: str) -> list[str]:
    """Every object under ``prefix`` as the server lists it (directories included)."""
    selector = pafs.FileSelector(prefix, recursive=True, allow_not_found=True)
    return sorted(f"{i.path}:{i.type.name}" for i in filesystem.get_file_info(selector))


@pytest.fixture
def prefix(s3_server: S3Server) -> Iterator[str]:
    prefix = s3_server.fresh_prefix()
    yield prefix
    with contextlib.suppress(FileNotFoundError):
        s3_server.filesystem().delete_dir(prefix)


@pytest.mark.s3
@pytest.mark.parametrize("how", ["tabstream-settings", "aws-endpoint-url"])
def test_settings_compose_an_s3_store_on_the_operators_endpoint(
    s3_server: S3Server, prefix: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, how: str
) -> None:
    for name, value in s3_server.env(f"s3://{prefix}").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TABSTREAM_DATA_DIR", str(tmp_path))
    if how == "aws-endpoint-url":  # without tabstream's settings, pyarrow's own URI handling
        monkeypatch.delenv("TABSTREAM_S3_ENDPOINT")
        monkeypatch.delenv("TABSTREAM_S3_REGION")
        monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    store = build_artifacts(CommonSettings())
    assert isinstance(store, S3ArtifactStore)
    assert store.root_uri == f"s3://{prefix}"
    assert store.put_bytes("jobs/j1/result.json", b"{}") == f"s3://{prefix}/jobs/j1/result.json"
    with s3_server.filesystem().open_input_stream(f"{prefix}/jobs/j1/result.json") as src:
        assert src.readall() == b"{}"


def test_bad_s3_settings_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TABSTREAM_S3_ENDPOINT"):
        build_artifacts(CommonSettings(artifacts_uri="s3://b/p", s3_endpoint="ftp://x"))
    with pytest.raises(ConfigError, match="no bucket"):
        build_artifacts(CommonSettings(artifacts_uri="s3:///p", s3_endpoint="http://h:1"))
    settings = CommonSettings(artifacts_uri="s3://b/p?scheme=http", s3_endpoint="http://h:1")
    with pytest.raises(ConfigError, match="takes no options"):
        build_artifacts(settings)


@pytest.mark.s3
def test_writes_leave_only_their_objects(s3_server: S3Server, prefix: str) -> None:
    filesystem = s3_server.filesystem()
    store = S3ArtifactStore(filesystem, prefix, f"s3://{prefix}")
    store.put_bytes("a/b/blob", b"x")
    store.write_parquet("d/data.parquet", pa.table({"x": [1, 2]}))
    store.append_bytes("jobs/j/study.journal", b"1\n")
    store.append_bytes("jobs/j/study.journal", b"2\n")
    with store.open_output("uploads/u/data.csv") as out:
        out.write(b"x\n1\n")
    files = [p for p in raw_paths(filesystem, prefix) if p.endswith(":File")]
    names = ["a/b/blob", "d/data.parquet", "jobs/j/study.journal", "uploads/u/data.csv"]
    assert files == [f"{prefix}/{name}:File" for name in names]
    assert store.get_bytes("jobs/j/study.journal") == b"1\n2\n"
    with pytest.raises(ArtifactNotFound):
        store.get_bytes("a/b")  # a "directory" is no blob


@pytest.mark.s3
def test_large_blobs_round_trip_in_parts(s3_server: S3Server, prefix: str) -> None:
    store = S3ArtifactStore(s3_server.filesystem(), prefix, f"s3://{prefix}")
    data = bytes(range(256)) * (BIG // 256)
    store.put_bytes("models/m/weights.bin", data)
    with store.open_output("uploads/u/big.bin") as out:
        for start in range(0, BIG, 1 << 20):
            out.write(data[start : start + (1 << 20)])
    assert store.get_bytes("models/m/weights.bin") == data
    with store.open_input("uploads/u/big.bin") as src:
        src.seek(BIG - 5)
        assert src.read() == data[-5:]
        assert src.size() == BIG


@pytest.mark.s3
def test_refused_credentials_fail_at_once(s3_server: S3Server, prefix: str) -> None:
    wrong = pafs.S3FileSystem(
        access_key=s3_server.access_key,
        secret_key="not-the-secret",
        endpoint_override=s3_server.address,
        scheme="http",
        region="us-east-1",
    )
    store = S3ArtifactStore(wrong, prefix, f"s3://{prefix}", retry_s=30)
    started = time.monotonic()
    with pytest.raises(OSError, match=r"SIGNATURE_DOES_NOT_MATCH|ACCESS_DENIED") as caught:
        store.put_bytes("x", b"x")
    assert not isinstance(caught.value, ArtifactStoreUnavailable)
    assert time.monotonic() - started < 10


def test_an_unreachable_server_is_retried_then_reported() -> None:
    filesystem = pafs.S3FileSystem(
        access_key="k",
        secret_key="s",
        endpoint_override=f"127.0.0.1:{free_port()}",
        scheme="http",
        region="us-east-1",
    )
    reported: list[ArtifactStoreUnavailable] = []
    store = S3ArtifactStore(
        filesystem, "b/p", "s3://b/p", retry_s=0.6, on_unavailable=reported.append
    )
    started = time.monotonic()
    with pytest.raises(
        ArtifactStoreUnavailable, match=r"s3://b/p unreachable for 0\.6 s"
    ) as caught:
        store.get_bytes("jobs/j/study.journal")
    assert time.monotonic() - started >= 0.6
    assert reported == [caught.value]
    assert not is_transient(caught.value)  # an outer retry does not wait again


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (OSError("AWS Error NETWORK_CONNECTION during HeadObject operation: curlCode: 7"), True),
        (OSError("AWS Error UNKNOWN (HTTP status 503) during PutObject operation"), True),
        (OSError("AWS Error SLOW_DOWN during UploadPart operation"), True),
        (ConnectionResetError("reset"), True),
        (OSError("AWS Error ACCESS_DENIED during HeadObject operation"), False),
        (OSError("AWS Error UNKNOWN (HTTP status 400) during UploadPart operation"), False),
        (FileNotFoundError("Path does not exist 'b/k'"), False),
        (ValueError("NETWORK_CONNECTION"), False),
    ],
)
def test_which_failures_are_retried(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


@pytest.mark.s3
@pytest.mark.slow
def test_a_server_restart_is_only_a_wait(s3_server: S3Server, tmp_path: Path) -> None:
    own = OwnS3Server(S3Server(f"127.0.0.1:{free_port()}", s3_server.bucket), tmp_path / "data")
    own.start()
    try:
        filesystem = own.server.filesystem()
        store = S3ArtifactStore(filesystem, f"{own.server.bucket}/p", "s3://x/p", retry_s=60)
        store.put_bytes("jobs/j/study.journal", b"1\n")
        own.stop()
        restart = threading.Timer(1.0, own.start)
        restart.start()
        started = time.monotonic()
        store.append_bytes("jobs/j/study.journal", b"2\n")
        waited = time.monotonic() - started
        restart.join()
        assert store.get_bytes("jobs/j/study.journal") == b"1\n2\n"
        assert waited >= 1.0
    finally:
        own.stop()


def test_a_job_process_loses_its_attempt_when_the_store_stays_away() -> None:
    """The child's policy (``bootstrap.child.lose_attempt``): exit at once, without an outcome,
    so that the worker counts a lost attempt (JobInterrupted), not a failed job."""
    code = (
        "from tabstream.adapters.artifacts import ArtifactStoreUnavailable\n"
        "from tabstream.bootstrap.child import lose_attempt\n"
        "try:\n"
        "    lose_attempt(ArtifactStoreUnavailable('s3://b/p unreachable for 1 s'))\n"
        "finally:\n"
        "    print('not reached')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == STORE_UNAVAILABLE_EXIT == 75
    assert "not reached" not in done.stdout
    assert "this attempt is lost" in done.stdout + done.stderr
