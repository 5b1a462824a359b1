"""The reference API's upload flow and connection_config datasets, through HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from tabstream.adapters.artifacts.pyarrow_fs import PyArrowFsArtifactStore
from tabstream.bootstrap.api import build_api
from tabstream.schemas import decode
from tests.api.conftest import AUTH_A, AUTH_B, CSV, Api, parquet_bytes, running, settings


async def create_upload(api: Api, file_format: str = "csv", headers: Any = None) -> Any:
    r = await api.client.post(
        "/v1/uploads", json={"file_format": file_format}, headers=headers or AUTH_A
    )
    assert r.status_code == 201, r.text
    return r.json()


async def put(api: Api, created: Any, data: bytes) -> httpx.Response:
    """PUT bytes to the signed URL without any Authorization header."""
    headers = {"Content-Type": created["content_type"]}
    return await api.client.put(created["upload_url"], content=data, headers=headers)


async def uploaded(api: Api, data: bytes = CSV, file_format: str = "csv") -> Any:
    created = await create_upload(api, file_format)
    r = await put(api, created, data)
    assert r.status_code == 200, r.text
    return r.json()["connection_config"]


async def test_create_upload_answers_the_reference_shape(api: Api) -> None:
    created = await create_upload(api)
    config = created["connection_config"]
    assert set(created) == {"connection_config", "upload_url", "content_type", "expires_in"}
    assert config["connector_type"] == "file_upload" and config["state"] == "pending"
    assert config["uri"] == f"uploads/{config['id']}"
    assert created["content_type"] == "text/csv" and created["expires_in"] == 3600
    url = urlsplit(created["upload_url"])
    assert url.path == f"/v1/uploads/{config['id']}/content"
    assert set(parse_qs(url.query)) == {"tenant", "expires", "signature"}
    parquet = await create_upload(api, "parquet")
    assert parquet["content_type"] == "application/vnd.apache.parquet"


async def test_pkl_is_refused_saying_why(api: Api) -> None:
    r = await api.client.post("/v1/uploads", json={"file_format": "pkl"}, headers=AUTH_A)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "file_format"]
    assert "never unpickles" in r.json()["detail"][0]["msg"]


async def test_put_then_register_then_describe(api: Api) -> None:
    config = await uploaded(api)
    assert config["state"] == "completed"
    state = await api.client.get(f"/v1/uploads/{config['id']}", headers=AUTH_A)
    assert state.json()["state"] == "completed"
    body = {"connection_config": config, "columns": [{"name": "x1"}, {"name": "y"}]}
    body["filter"] = {"kind": "cmp", "col": "x1", "op": "ge", "value": 10}
    r = await api.client.post("/v1/datasets", json=body, headers=AUTH_A)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["rows"] == 30 and [c["name"] for c in created["columns"]] == ["x1", "y"]
    got = (await api.client.get(f"/v1/datasets/{created['id']}", headers=AUTH_A)).json()
    assert got["id"] == got["dataset_id"] == created["dataset_id"]
    assert got["connection_config"]["connector_type"] == "file_upload"
    assert got["connection_config"]["id"] == config["id"]
    assert got["filter"] == body["filter"]
    assert got["updated_at"] == got["created_at"] and got["sha256"]
    table = api.ctx.artifacts.read_parquet(f"datasets/{created['id']}/data.parquet")
    assert table.column("x1").to_pylist() == list(range(10, 40))


async def test_parquet_upload(api: Api) -> None:
    table = pa.table({"a": [1, 2, 3], "y": [0.5, 1.5, 2.5]})
    config = await uploaded(api, parquet_bytes(table), "parquet")
    r = await api.client.post("/v1/datasets", json={"connection_config": config}, headers=AUTH_A)
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 3


async def test_upload_url_is_single_use(api: Api) -> None:
    created = await create_upload(api)
    assert (await put(api, created, CSV)).status_code == 200
    again = await put(api, created, b"a,b\n1,2\n")
    assert again.status_code == 409
    upload_id = created["connection_config"]["id"]
    assert len(api.ctx.artifacts.keys(f"uploads/{upload_id}")) == 1


async def test_a_tampered_or_expired_url_is_403(api: Api) -> None:
    created = await create_upload(api)
    url = created["upload_url"]
    tampered = url.replace("tenant=tenant-a", "tenant=tenant-b")
    r = await api.client.put(tampered, content=CSV)
    assert r.status_code == 403 and "signature" in r.json()["detail"]
    query = parse_qs(urlsplit(url).query)
    expired = api.ctx.signed_urls.query(
        "upload", created["connection_config"]["id"], "tenant-a", -1
    )
    r = await api.client.put(url.split("?")[0] + "?" + expired, content=CSV)
    assert r.status_code == 403 and "expired" in r.json()["detail"]
    assert query["tenant"] == ["tenant-a"]


async def test_bytes_of_another_format_are_422_and_nothing_is_stored(api: Api) -> None:
    created = await create_upload(api, "parquet")
    r = await put(api, created, CSV)
    assert r.status_code == 422 and "not parquet" in r.json()["detail"][0]["msg"]
    empty = await put(api, await create_upload(api), b"")
    assert empty.status_code == 422
    assert api.ctx.artifacts.keys("uploads") == []


@pytest.fixture
async def small_api(tmp_path: Path) -> Any:
    async for running_api in running(build_api(settings(tmp_path, max_upload_mb=1))):
        yield running_api


async def test_an_oversized_upload_is_413(small_api: Api) -> None:
    created = await create_upload(small_api)
    big = b"a,b\n" + b"1,2\n" * 300_000

    async def chunks() -> Any:
        for i in range(0, len(big), 65536):
            yield big[i : i + 65536]

    r = await small_api.client.put(created["upload_url"], content=chunks())
    assert r.status_code == 413
    assert small_api.ctx.artifacts.keys("uploads") == []


async def test_a_pending_or_foreign_upload_cannot_become_a_dataset(api: Api) -> None:
    created = await create_upload(api)
    body = {"connection_config": created["connection_config"]}
    r = await api.client.post("/v1/datasets", json=body, headers=AUTH_A)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "connection_config", "id"]
    assert "pending" in r.json()["detail"][0]["msg"]
    config = await uploaded(api)
    other = await api.client.post(
        "/v1/datasets", json={"connection_config": config}, headers=AUTH_B
    )
    assert other.status_code == 422 and "no upload" in other.json()["detail"][0]["msg"]


@pytest.mark.parametrize("connector", ["snowflake", "databricks"])
async def test_unsupported_connectors_are_422(api: Api, connector: str) -> None:
    body = {"connection_config": {"connector_type": connector, "account": "x"}}
    r = await api.client.post("/v1/datasets", json=body, headers=AUTH_A)
    assert r.status_code == 422
    error = r.json()["detail"][0]
    assert error["loc"][-1] == "connector_type" and "not supported" in error["msg"]


async def test_bad_columns_or_filter_are_422_and_nothing_is_written(api: Api) -> None:
    config = await uploaded(api)
    for extra, field in (
        ({"columns": [{"name": "nope"}]}, "columns"),
        ({"filter": {"kind": "cmp", "col": "x1", "op": "eq", "value": "text"}}, "filter"),
    ):
        body = {"connection_config": config, **extra}
        r = await api.client.post("/v1/datasets", json=body, headers=AUTH_A)
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"] == ["body", field]
    assert api.ctx.artifacts.keys("datasets") == []
    listing = await api.client.get("/v1/datasets", headers=AUTH_A)
    assert listing.json()["items"] == []


async def test_s3_source_reading_the_artifact_store_is_403(api: Api) -> None:
    """The artifact store holds every tenant's data: an s3 source inside it is refused, for
    datasets and prediction jobs alike (both resolve sources the same way)."""
    root = "s3://tabstream-artifacts/prefix"
    api.ctx.artifacts = PyArrowFsArtifactStore(pafs._MockFileSystem(), "b/p", root)
    uri = f"{root}/datasets/x/data.parquet"
    body = {"connection_config": {"connector_type": "s3", "uri": uri}}
    r = await api.client.post("/v1/datasets", json=body, headers=AUTH_A)
    assert r.status_code == 403, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "connection_config", "uri"]


async def test_an_upload_dataset_event_is_recorded_with_its_source(api: Api) -> None:
    config = await uploaded(api)
    r = await api.client.post("/v1/datasets", json={"connection_config": config}, headers=AUTH_A)
    assert r.status_code == 201
    envelopes = [decode(rec.value) async for rec in api.ctx.log.read(api.ctx.topics.events)]
    by_type = {env.type: env.payload for env in envelopes}  # partitions interleave
    assert len(envelopes) == 3
    assert set(by_type) == {"UploadCreated", "UploadCompleted", "DatasetRegistered"}
    registered = by_type["DatasetRegistered"]
    assert registered.source is not None  # type: ignore[union-attr]
    assert registered.source.upload_key.startswith(f"uploads/{config['id']}/")  # type: ignore[union-attr]
