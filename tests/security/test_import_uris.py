"""POST /v1/datasets {"uri": ...}: a user's import URI names an object and nothing else.

The endpoint, scheme, region and credentials of ``s3://`` imports are the operator's
(``TABSTREAM_S3_ENDPOINT``, ``TABSTREAM_S3_REGION``, the AWS credential chain); a URI that
tries to choose any of them, or to leave its place, is a 422 naming ``uri`` before any I/O.
A loopback listener stands in for the operator's S3 endpoint and records every connection.
"""

from __future__ import annotations

import os
import re
import select
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from tabstream.adapters.artifacts import InvalidArtifactKey, validate_key
from tabstream.adapters.s3_imports import S3ImportConfig
from tabstream.bootstrap.api import build_api
from tabstream.settings import ConfigError
from tests.api.conftest import AUTH_A, Api, parquet_bytes, running, settings, upload

OPERATOR_KEY = "OPERATORKEYID"
URI_SECRET = "uri-secret-never-echoed"
Reply = Callable[[bytes], bytes | None]


class Listener:
    """A loopback TCP server: records the request head of every connection and answers it
    with ``reply(head)`` (None: close without a word). ``close`` stops it and also counts
    connections still waiting in the backlog, so "no connection" is never a race."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self.reply: Reply = lambda _head: None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``, as TABSTREAM_S3_ENDPOINT."""
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.05)
            if ready:
                self._handle(self.sock.accept()[0])

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                head += chunk
            self.requests.append(head)
            answer = self.reply(head)
            if answer is not None:
                conn.sendall(answer)

    def close(self) -> list[bytes]:
        """Stop serving; every request head seen, plus b"" per connection left unaccepted."""
        if self._stop.is_set():
            return self.requests
        self._stop.set()
        self._thread.join(5)
        self.sock.setblocking(False)
        while True:
            try:
                self.sock.accept()[0].close()
            except BlockingIOError:
                break
            self.requests.append(b"")
        self.sock.close()
        return self.requests


def http_reply(
    status: str, body: bytes = b"", *, length: int | None = None, **headers: str
) -> bytes:
    """An HTTP/1.1 response that closes the connection (``length``: a HEAD's Content-Length;
    ``Header_Name="value"`` adds ``Header-Name: value``)."""
    size = len(body) if length is None else length
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {size}", "Connection: close"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def tiny_s3(objects: dict[str, bytes]) -> Reply:
    """Just enough S3 for pyarrow to read ``objects`` (path -> bytes): HEAD and ranged GET."""

    def reply(head: bytes) -> bytes:
        method, target = head.decode("latin-1").split(" ", 2)[:2]
        data = objects.get(target)
        if data is None:
            return http_reply("404 Not Found")
        modified = "Mon, 01 Jan 2024 00:00:00 GMT"
        if method == "HEAD":
            return http_reply("200 OK", length=len(data), ETag='"1"', Last_Modified=modified)
        found = re.search(rb"(?i)\r\nrange: bytes=(\d+)-(\d+)", head)
        if found is None:
            return http_reply("200 OK", data, ETag='"1"', Last_Modified=modified)
        start, end = int(found[1]), min(int(found[2]), len(data) - 1)
        content_range = f"bytes {start}-{end}/{len(data)}"
        return http_reply("206 Partial Content", data[start : end + 1], Content_Range=content_range)

    return reply


@pytest.fixture
def listener() -> Iterator[Listener]:
    """The operator's (fake) S3 endpoint."""
    server = Listener()
    yield server
    server.close()


@pytest.fixture
def operator_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials from the standard AWS chain (environment), no metadata service."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", OPERATOR_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "operator-secret-access-key")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def s3_api(
    tmp_path: Path, listener: Listener, operator_credentials: None
) -> AsyncIterator[Api]:
    """The API with its S3 endpoint on ``listener``, file imports under tmp_path/imports,
    a 1 MB upload limit."""
    (tmp_path / "imports").mkdir()
    config = settings(
        tmp_path,
        s3_endpoint=listener.endpoint,
        s3_region="us-east-1",
        import_root=tmp_path / "imports",
        max_upload_mb=1,
    )
    async for running_api in running(build_api(config)):
        yield running_api


async def post_import(api: Api, uri: str) -> httpx.Response:
    """POST /v1/datasets with a JSON import body."""
    return await api.client.post("/v1/datasets", json={"uri": uri}, headers=AUTH_A)


async def registered(api: Api) -> list[Any]:
    """The datasets tenant A has."""
    listed = await api.client.get("/v1/datasets", headers=AUTH_A)
    assert listed.status_code == 200, listed.text
    items: list[Any] = listed.json()["items"]
    return items


def assert_names_uri(response: httpx.Response, status: int = 422) -> None:
    """``status`` with an error located at ``body.uri``."""
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list), detail
    assert [e["loc"] for e in detail] == [["body", "uri"]], detail


def refused_s3_uris(port: int) -> list[str]:
    """URIs that try to pick the endpoint, carry credentials or leave their place."""
    return [
        f"s3://bucket/k.parquet?endpoint_override=127.0.0.1:{port}&scheme=http",
        f"s3://bucket/k.parquet?endpoint_override=127.0.0.1%3A{port}",
        "s3://bucket/k.parquet?",
        "s3://bucket/k.parquet?region=us-west-2",
        "s3://bucket/k.parquet#frag",
        f"s3://bucket:{port}/k.parquet",
        f"s3://127.0.0.1:{port}/k.parquet",
        "s3://user@bucket/k.parquet",
        f"s3://{OPERATOR_KEY}:{URI_SECRET}@bucket/k.parquet",
        "s3://bucket/a/../k.parquet",
        "s3://bucket/../k.parquet",
        "s3://bucket/./k.parquet",
        "s3://bucket/a//k.parquet",
        "s3://bucket//k.parquet",
        "s3://bucket/k/",
        "s3://bucket/a/%2e%2e/k.parquet",
        "s3://bucket/a%2F..%2Fk.parquet",
        "s3://bucket/a\\k.parquet",
        "s3://bucket/a%5Ck.parquet",
        "s3://bucket/k%00.parquet",
        "s3://bucket/k%0a.parquet",
        "s3://bucket/k%zz",
        "s3://bucket/k%ff",
        "s3://bucket",
        "s3://bucket/",
        "S3://bucket/k.parquet",
        "s3://b/k.parquet",
        "s3://Bucket/k.parquet",
        "s3://bucket_x/k.parquet",
        "s3://-bucket/k.parquet",
        "s3://bucket-/k.parquet",
        "s3://my..bucket/k.parquet",
        "s3://192.168.1.10/k.parquet",
        "s3://127.0.0.1/k.parquet",
        "s3://[::1]/k.parquet",
        "s3://xn--bucket/k.parquet",
        "s3://bucket-s3alias/k.parquet",
        "s3://" + "a" * 64 + "/k.parquet",
        "s3://bucket/" + "k" * 1025,
    ]


async def test_refused_s3_uris_are_422_and_connect_nowhere(s3_api: Api, listener: Listener) -> None:
    for uri in refused_s3_uris(listener.port):
        assert_names_uri(await post_import(s3_api, uri))
    assert listener.close() == [], "the server connected for a refused uri"
    assert await registered(s3_api) == []


async def test_uri_credentials_are_refused_and_never_echoed(
    s3_api: Api, listener: Listener
) -> None:
    for uri in [
        f"s3://{OPERATOR_KEY}:{URI_SECRET}@bucket/k.parquet",
        f"s3://{URI_SECRET}@bucket/k.parquet",
        f"file://{URI_SECRET}@localhost/etc/passwd",
    ]:
        r = await post_import(s3_api, uri)
        assert_names_uri(r)
        assert "credentials" in r.json()["detail"][0]["msg"]
        assert URI_SECRET not in r.text and OPERATOR_KEY not in r.text
    assert listener.close() == []


@pytest.mark.parametrize(
    "uri",
    [
        "file:///{root}/x%00.csv",
        "file:///{root}/x%00",
        "file:///{root}/%0a.csv",
        "file:///{root}/x.csv?mode=rw",
        "file:///{root}/x.csv#x",
        "file://otherhost/{root}/x.csv",
        "file://localhost:8080/{root}/x.csv",
        "file:///{root}/a%5C..%5Cx.csv",
        "file:///{root}/%zz.csv",
        "file:///",
    ],
)
async def test_bad_file_uris_are_422_not_500(s3_api: Api, tmp_path: Path, uri: str) -> None:
    root = (tmp_path / "imports").as_posix().lstrip("/")
    (tmp_path / "imports" / "x.csv").write_bytes(b"a\n1\n")
    assert_names_uri(await post_import(s3_api, uri.format(root=root)))
    assert await registered(s3_api) == []


async def test_unreadable_file_names_are_4xx_not_500(s3_api: Api, tmp_path: Path) -> None:
    imports = tmp_path / "imports"
    os.mkfifo(imports / "fifo.csv")
    (imports / "dir.csv").mkdir()
    (imports / "link.csv").symlink_to(tmp_path / "outside.csv")
    (tmp_path / "outside.csv").write_bytes(b"a\n1\n")
    cases = {
        imports / ("n" * 300 + ".csv"): 422,  # ENAMETOOLONG
        imports / "fifo.csv": 422,  # would block forever on open
        imports / "dir.csv": 422,
        imports / "missing.csv": 422,
        imports / "link.csv": 403,  # resolves outside the root
    }
    for path, status in cases.items():
        r = await post_import(s3_api, path.as_uri())
        assert r.status_code == status, (path.name[:20], r.text)
        if status == 422:
            assert_names_uri(r)
    assert await registered(s3_api) == []


async def test_file_import_larger_than_the_upload_limit_is_413(s3_api: Api, tmp_path: Path) -> None:
    big = tmp_path / "imports" / "big.csv"
    big.write_bytes(b"a\n" + b"1\n" * (600 * 1024))  # 1.2 MB, the limit is 1 MB
    r = await post_import(s3_api, big.as_uri())
    assert r.status_code == 413, r.text
    assert await registered(s3_api) == []


async def test_file_import_cannot_read_the_artifact_store(
    tmp_path: Path, operator_credentials: None
) -> None:
    """Even with the import root above the data dir, another tenant's stored dataset is
    out of reach."""
    async for api in running(build_api(settings(tmp_path, import_root=tmp_path))):
        dataset_id = await upload(api.client)
        stored = tmp_path / "data" / "artifacts" / "datasets" / dataset_id / "data.parquet"
        assert stored.is_file()
        r = await post_import(api, stored.as_uri())
        assert r.status_code == 403 and "artifact store" in r.text, r.text
        assert len(await registered(api)) == 1


async def test_the_operators_endpoint_and_credentials_are_used(
    s3_api: Api, listener: Listener
) -> None:
    listener.reply = lambda _head: http_reply("403 Forbidden")
    r = await post_import(s3_api, "s3://my-bucket/dir/key.parquet")
    assert_names_uri(r)
    assert r.json()["detail"][0]["msg"] == (
        "uri: no such S3 object, or the service may not read it"
    )
    assert str(listener.port) not in r.text
    heads = listener.close()
    assert heads, "the operator's S3 endpoint was not used"
    assert heads[0].startswith(b"HEAD /my-bucket/dir/key.parquet HTTP/1.1\r\n"), heads[0]
    assert f"Credential={OPERATOR_KEY}/".encode() in heads[0]
    assert all(h.startswith(b"HEAD /my-bucket/dir/key.parquet ") for h in heads)
    assert await registered(s3_api) == []


async def test_storage_not_answering_is_502_without_details(
    s3_api: Api, listener: Listener
) -> None:
    """The listener is no S3 server: it closes every connection without a word."""
    r = await post_import(s3_api, "s3://my-bucket/key.parquet")
    assert r.status_code == 502, r.text
    assert r.json() == {
        "detail": "uri: the S3 object could not be read (storage unavailable); try again later"
    }
    assert listener.close(), "the operator's S3 endpoint was not used"
    assert await registered(s3_api) == []


async def test_s3_object_larger_than_the_upload_limit_is_413_without_download(
    s3_api: Api, listener: Listener
) -> None:
    listener.reply = tiny_s3({"/my-bucket/big.parquet": b"x" * (2 * 1024 * 1024)})
    r = await post_import(s3_api, "s3://my-bucket/big.parquet")
    assert r.status_code == 413, r.text
    heads = listener.close()
    assert heads and all(h.startswith(b"HEAD ") for h in heads), heads
    assert await registered(s3_api) == []


async def test_valid_s3_import_reads_from_the_operators_endpoint(
    s3_api: Api, listener: Listener
) -> None:
    data = parquet_bytes(pa.table({"a": [1, 2, 3], "y": [0.5, 1.5, 2.5]}))
    listener.reply = tiny_s3({"/my-bucket/dir/my%20data.parquet": data})
    r = await post_import(s3_api, "s3://my-bucket/dir/my%20data.parquet")
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 3 and r.json()["name"] == "my data.parquet"
    assert all(h.split(b" ")[1] == b"/my-bucket/dir/my%20data.parquet" for h in listener.close())
    assert [d["dataset_id"] for d in await registered(s3_api)] == [r.json()["dataset_id"]]


@pytest.mark.parametrize("key", ["datasets/abc\n", "datasets/abc\n/data.parquet", "a/../b", "/a"])
def test_artifact_keys_are_matched_whole(key: str) -> None:
    """A segment regex anchored with ``$`` accepted a trailing newline."""
    with pytest.raises(InvalidArtifactKey):
        validate_key(key)


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("http://127.0.0.1:9000", ("127.0.0.1:9000", "http")),
        ("https://s3.internal/", ("s3.internal", "https")),
        ("minio:9000", ("minio:9000", "https")),
        (None, (None, "https")),
    ],
)
def test_the_operators_endpoint_setting_is_parsed(
    endpoint: str | None, expected: tuple[str | None, str]
) -> None:
    config = S3ImportConfig.from_settings(endpoint, "eu-west-1")
    assert (config.endpoint_override, config.scheme, config.region) == (*expected, "eu-west-1")


@pytest.mark.parametrize(
    "endpoint", ["ftp://host:21", "http://user:pw@host:9000", "http://host/path", "http://"]
)
def test_a_bad_endpoint_setting_fails_at_start_naming_it(tmp_path: Path, endpoint: str) -> None:
    with pytest.raises(ConfigError, match="TABSTREAM_S3_ENDPOINT") as raised:
        build_api(settings(tmp_path, s3_endpoint=endpoint))
    assert "pw" not in str(raised.value)
