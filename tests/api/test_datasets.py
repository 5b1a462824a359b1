"""POST/GET /v1/datasets: CSV and Parquet uploads, imports, limits and tenant isolation."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pyarrow as pa
import pytest

from tabstream.bootstrap.api import build_api
from tests.api.conftest import AUTH_A, AUTH_B, CSV, Api, parquet_bytes, running, settings, upload


async def test_csv_upload_describes_and_stores(api: Api) -> None:
    r = await api.client.post(
        "/v1/datasets",
        files={"file": ("t.csv", CSV, "text/csv")},
        data={"name": "mine"},
        headers=AUTH_A,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == "mine" and body["rows"] == 40
    assert [c["name"] for c in body["columns"]] == ["x1", "x2", "cat", "y", "label"]
    assert body["columns"][0] == {"name": "x1", "type": "int64", "nulls": 0}
    key = f"datasets/{body['dataset_id']}/data.parquet"
    assert hashlib.sha256(api.ctx.artifacts.get_bytes(key)).hexdigest() == body["sha256"]
    got = await api.client.get(f"/v1/datasets/{body['dataset_id']}", headers=AUTH_A)
    assert got.status_code == 200 and got.json()["sha256"] == body["sha256"]
    listed = await api.client.get("/v1/datasets", headers=AUTH_A)
    assert [d["dataset_id"] for d in listed.json()["items"]] == [body["dataset_id"]]


async def test_parquet_upload_detected_by_magic(api: Api) -> None:
    table = pa.table({"a": [1, None, 3], "b": ["x", "y", None]})
    r = await api.client.post(
        "/v1/datasets", files={"file": ("x.bin", parquet_bytes(table))}, headers=AUTH_A
    )
    assert r.status_code == 201, r.text
    assert r.json()["columns"] == [
        {"name": "a", "type": "int64", "nulls": 1},
        {"name": "b", "type": "string", "nulls": 1},
    ]
    assert r.json()["name"] == "x.bin"


async def test_other_tenant_gets_404(api: Api) -> None:
    dataset_id = await upload(api.client)
    assert (await api.client.get(f"/v1/datasets/{dataset_id}", headers=AUTH_B)).status_code == 404
    assert (await api.client.get("/v1/datasets", headers=AUTH_B)).json()["items"] == []
    unknown = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
    assert (await api.client.get(f"/v1/datasets/{unknown}", headers=AUTH_A)).status_code == 404


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"a,a,b\n1,2,3\n", "duplicated: ['a']"),
        (b"a,,b\n1,2,3\n", "must not be empty"),
        (b"a,b\n1,2,3\n", "cannot parse"),
        (b"PAR1notparquet", "cannot parse the file as Parquet"),
    ],
)
async def test_bad_columns_are_422_naming_them(api: Api, data: bytes, needle: str) -> None:
    r = await api.client.post("/v1/datasets", files={"file": ("t.csv", data)}, headers=AUTH_A)
    assert r.status_code == 422, r.text
    assert needle in r.text


async def test_missing_file_field_is_422(api: Api) -> None:
    r = await api.client.post(
        "/v1/datasets", data={"name": "x"}, files={"other": ("a", b"1")}, headers=AUTH_A
    )
    assert r.status_code == 422 and "file" in r.text


async def test_unsupported_content_type_is_415(api: Api) -> None:
    r = await api.client.post(
        "/v1/datasets", content=b"a,b\n", headers={**AUTH_A, "content-type": "text/csv"}
    )
    assert r.status_code == 415


@pytest.fixture
async def small_api(tmp_path: Path) -> AsyncIterator[Api]:
    """Upload limit 1 MB, 3 columns, file imports under tmp_path/imports."""
    (tmp_path / "imports").mkdir()
    app = build_api(
        settings(tmp_path, max_upload_mb=1, max_columns=3, import_root=tmp_path / "imports")
    )
    async for running_api in running(app):
        yield running_api


async def test_too_many_columns_is_422(small_api: Api) -> None:
    r = await small_api.client.post(
        "/v1/datasets", files={"file": ("t.csv", b"a,b,c,d\n1,2,3,4\n")}, headers=AUTH_A
    )
    assert r.status_code == 422 and "limit is 3" in r.text


async def test_declared_oversize_is_413_before_reading(small_api: Api) -> None:
    headers = {
        **AUTH_A,
        "content-type": "multipart/form-data; boundary=x",
        "content-length": str(50 * 2**20),
    }
    r = await small_api.client.post("/v1/datasets", content=b"", headers=headers)
    assert r.status_code == 413


async def test_streamed_oversize_is_413_without_reading_it_all(small_api: Api) -> None:
    sent = 0
    chunk = b"1,2,3\n" * 10_000  # 60 kB
    total_chunks = 200  # 12 MB in all, the limit is 1 MB

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'--xx\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n'
        yield b"\r\na,b,c\n"
        for _ in range(total_chunks):
            sent += 1
            yield chunk

    headers = {**AUTH_A, "content-type": "multipart/form-data; boundary=xx"}
    r = await small_api.client.post("/v1/datasets", content=body(), headers=headers)
    assert r.status_code == 413, r.text
    assert sent < 30, f"the server read {sent} of {total_chunks} chunks before refusing"


async def test_file_import_under_root(small_api: Api, tmp_path: Path) -> None:
    path = tmp_path / "imports" / "d.parquet"
    path.write_bytes(parquet_bytes(pa.table({"a": [1, 2], "y": [0.5, 1.5]})))
    r = await small_api.client.post(
        "/v1/datasets", json={"uri": path.as_uri(), "name": "imp"}, headers=AUTH_A
    )
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 2 and r.json()["name"] == "imp"


async def test_file_import_outside_root_is_403(small_api: Api, tmp_path: Path) -> None:
    outside = tmp_path / "secret.csv"
    outside.write_bytes(b"a\n1\n")
    for uri in [outside.as_uri(), (tmp_path / "imports" / ".." / "secret.csv").as_uri()]:
        r = await small_api.client.post("/v1/datasets", json={"uri": uri}, headers=AUTH_A)
        assert r.status_code == 403, r.text


async def test_file_import_disabled_without_root(api: Api, tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b"a\n1\n")
    r = await api.client.post("/v1/datasets", json={"uri": path.as_uri()}, headers=AUTH_A)
    assert r.status_code == 403 and "disabled" in r.text


async def test_import_bad_uri_is_422(api: Api) -> None:
    r = await api.client.post("/v1/datasets", json={"uri": "http://example.com/x"}, headers=AUTH_A)
    assert r.status_code == 422 and "uri" in r.text
