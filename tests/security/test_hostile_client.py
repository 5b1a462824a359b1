"""Issue 14, driven through HTTP as a hostile client would: nothing poisons the read model,
pins a worker, echoes a huge body or answers 500; one test per probe that used to get through."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tabstream.adapters.bus.embedded import EmbeddedEventLog
from tabstream.adapters.bus.port import OutgoingRecord
from tabstream.bootstrap.api import build_api
from tabstream.schemas.topics import Topics
from tests.api.conftest import (
    AUTH_A,
    AUTH_B,
    CSV,
    Api,
    parquet_bytes,
    run_body,
    running,
    settings,
    upload,
)
from tests.api.test_models_support import register, train

FROZEN = Path(__file__).parents[1] / "replay" / "assets" / "log_v1_unshowable.jsonl"
MIB = 1024 * 1024
FIVE_METRICS = ["auc", "accuracy", "neg_class_error", "logloss", "f1"]


def _binclass(dataset_id: str, **extra: Any) -> dict[str, Any]:
    task = {"task_kind": "binclass", "label_column": "label"}
    return {**run_body(dataset_id), "task": task, **extra}


async def _datasets(api: Api, auth: dict[str, str] = AUTH_A) -> list[dict[str, Any]]:
    r = await api.client.get("/v1/datasets", headers=auth)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


# -- 2. one bad registration must not break a tenant's listing -----------------------------------


async def test_an_overlong_dataset_name_is_a_422_and_nothing_is_written(api: Api) -> None:
    r = await api.client.post(
        "/v1/datasets",
        files={"file": ("t.csv", CSV, "text/csv")},
        data={"name": "n" * 300},
        headers=AUTH_A,
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "name"]
    assert await _datasets(api) == []
    assert api.ctx.artifacts.keys("datasets") == []
    offsets = await api.ctx.log.end_offsets(api.ctx.topics.events)
    assert sum(offsets.values()) == 0


async def _api_over_frozen_log(tmp_path: Path) -> AsyncIterator[Api]:
    config = settings(tmp_path)
    log = EmbeddedEventLog(config.embedded_log_path)
    await log.start()
    await log.create_topics(Topics().partition_counts(["cpu"]))
    for line in FROZEN.read_text().splitlines():
        record = json.loads(line)
        await log.publish(OutgoingRecord(record["topic"], record["key"], record["value"].encode()))
    await log.close()
    async for api in running(build_api(config)):
        yield api


async def _until_folded(api: Api, datasets: int) -> None:
    """Until the projection has caught up with the log written before the API started."""
    for _ in range(400):
        if len(await _datasets(api)) >= datasets:
            return
        await asyncio.sleep(0.025)
    raise AssertionError("the projection did not catch up with the frozen log")


async def test_events_the_api_cannot_show_are_degraded_and_reported_never_500(
    tmp_path: Path,
) -> None:
    async for api in _api_over_frozen_log(tmp_path):
        await _until_folded(api, 3)
        for _ in range(2):  # every later read too, not just the first
            items = await _datasets(api)
            assert len(items) == 3
            by_id = {d["dataset_id"]: d for d in items}
            long_name = by_id["11111111-1111-4111-8111-111111111111"]["name"]
            assert len(long_name) == 256 and long_name.endswith("…")
            assert by_id["22222222-2222-4222-8222-222222222222"]["name"] == "dataset"
            assert by_id["33333333-3333-4333-8333-333333333333"]["name"] == "fine"
        for dataset_id in by_id:
            r = await api.client.get(f"/v1/datasets/{dataset_id}", headers=AUTH_A)
            assert r.status_code == 200, r.text
        assert await _datasets(api, AUTH_B) == []
        metrics = (await api.client.get("/metrics")).text
        assert 'tabstream_read_model_unshowable_total{kind="dataset"}' in metrics


# -- 3. a Pareto grid cannot pin a worker -------------------------------------------------------


async def test_a_huge_pareto_grid_is_a_422_naming_grid_size_with_its_row_count(api: Api) -> None:
    dataset_id = await upload(api.client)
    body = _binclass(dataset_id, metrics=FIVE_METRICS, grid_size=0.01)
    r = await api.client.post("/v1/trainer/run", json=body, headers=AUTH_A)
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["loc"] == ["body", "grid_size"]
    assert "4,598,126" in error["msg"] and "64" in error["msg"]
    small = _binclass(dataset_id, metrics=["auc", "logloss"], grid_size=0.25)
    assert (await api.client.post("/v1/trainer/run", json=small, headers=AUTH_A)).status_code == 202


# -- 4. bodies are capped and never echoed back ----------------------------------------------------


async def test_a_json_body_over_the_cap_is_a_413_declared_or_streamed(api: Api) -> None:
    dataset_id = await upload(api.client)
    padding = "x" * (2 * MIB)
    raw = json.dumps({**run_body(dataset_id), "padding": padding}).encode()
    headers = {**AUTH_A, "content-type": "application/json"}
    declared = await api.client.post("/v1/trainer/run", content=raw, headers=headers)
    assert declared.status_code == 413, declared.text

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(raw), 64 * 1024):
            yield raw[start : start + 64 * 1024]

    streamed = await api.client.post("/v1/trainer/run", content=chunks(), headers=headers)
    assert streamed.status_code == 413, streamed.text
    jobs = (await api.client.get("/v1/jobs", headers=AUTH_A)).json()["items"]
    assert jobs == []


async def test_a_large_invalid_input_is_not_echoed_in_the_422(api: Api) -> None:
    r = await api.client.post(
        "/v1/auth/refresh", json={"refresh_token": "t" * 500_000}, headers=AUTH_A
    )
    assert r.status_code == 422, r.text[:300]
    assert len(r.content) < 4096
    assert r.json()["detail"][0]["loc"] == ["body", "refresh_token"]


# -- 5. 500s that were 4xx ---------------------------------------------------------------------


@pytest.mark.parametrize("literal", ["1e400", "NaN", "-Infinity"])
async def test_non_finite_grid_size_literals_are_a_422(api: Api, literal: str) -> None:
    dataset_id = await upload(api.client)
    body = json.dumps(_binclass(dataset_id, metrics=["auc", "f1"], grid_size=0.5))
    raw = body.replace('"grid_size": 0.5', f'"grid_size": {literal}').encode()
    assert literal.encode() in raw
    headers = {**AUTH_A, "content-type": "application/json"}
    r = await api.client.post("/v1/trainer/run", content=raw, headers=headers)
    assert r.status_code == 422, r.text
    assert ["body", "grid_size"] in [e["loc"] for e in r.json()["detail"]]


# -- 6. seeds the libraries take -----------------------------------------------------------------


@pytest.mark.parametrize("seed", [-1, 2**32, 2**40, 2**70])
async def test_random_state_outside_uint32_is_a_422(api: Api, seed: int) -> None:
    dataset_id = await upload(api.client)
    r = await api.client.post(
        "/v1/trainer/run", json=run_body(dataset_id, random_state=seed), headers=AUTH_A
    )
    assert r.status_code == 422, r.text
    assert ["body", "random_state"] in [e["loc"] for e in r.json()["detail"]]


async def test_the_largest_uint32_seed_is_accepted(api: Api) -> None:
    dataset_id = await upload(api.client)
    body = run_body(dataset_id, random_state=2**32 - 1)
    assert (await api.client.post("/v1/trainer/run", json=body, headers=AUTH_A)).status_code == 202


# -- 9. smaller leaks ------------------------------------------------------------------------------


async def test_the_api_document_is_public_and_can_be_turned_off(api: Api, tmp_path: Path) -> None:
    for path in ("/openapi.json", "/docs", "/redoc"):
        assert (await api.client.get(path)).status_code == 200, path
    document = (await api.client.get("/openapi.json")).json()
    assert "/openapi.json" in document["info"]["description"]
    closed = build_api(settings(tmp_path / "closed", public_docs=False))
    async for private in running(closed):
        for path in ("/openapi.json", "/docs", "/redoc"):
            assert (await private.client.get(path)).status_code == 404, path
            assert (await private.client.get(path, headers=AUTH_A)).status_code == 404, path


async def test_models_show_no_server_paths(api: Api) -> None:
    events, _ = train(api, "credit_g", rows=120)
    model_id = await register(api, events)
    root = api.ctx.artifacts.root_uri
    listed = (await api.client.get("/v1/models", headers=AUTH_A)).json()["items"]
    one = (await api.client.get(f"/v1/models/{model_id}", headers=AUTH_A)).json()
    for model in (*listed, one):
        assert model["uri"].startswith(f"models/{model_id}"), model["uri"]
    assert root.removeprefix("file://") not in json.dumps([listed, one])


async def _expired_access(api: Api, tenant: str) -> dict[str, str]:
    """The header of an access token of ``tenant`` that expired a minute ago."""
    ttl, api.ctx.auth.access_ttl_s = api.ctx.auth.access_ttl_s, -60
    try:
        expired = api.ctx.auth.issue(tenant)
    finally:
        api.ctx.auth.access_ttl_s = ttl
    return {"Authorization": f"Bearer {expired.access_token}"}


async def test_another_tenants_refresh_token_is_refused_and_left_unspent(api: Api) -> None:
    expired_a = await _expired_access(api, "tenant-a")
    pair_b = (await api.client.post("/v1/auth/token", headers=AUTH_B)).json()
    refresh_b = pair_b["refresh_token"]
    r = await api.client.get("/v1/jobs", headers={**expired_a, "refresh-token": refresh_b})
    assert r.status_code == 401
    # B's family is intact: B rotates its own token once, without a reuse alarm
    rotated = await api.client.post("/v1/auth/refresh", json={"refresh_token": refresh_b})
    assert rotated.status_code == 200, rotated.text
    again = await api.client.post(
        "/v1/auth/refresh", json={"refresh_token": rotated.json()["refresh_token"]}
    )
    assert again.status_code == 200, again.text


async def test_an_empty_csv_label_cell_is_a_missing_value_not_a_class(api: Api) -> None:
    csv = b"x,label\n1,yes\n2,\n3,no\n4,yes\n"
    dataset_id = await upload(api.client, csv)
    found = (await api.client.get(f"/v1/datasets/{dataset_id}", headers=AUTH_A)).json()
    label = next(c for c in found["columns"] if c["name"] == "label")
    assert label["nulls"] == 1


# -- 10. a bad setting at start-up is one line -------------------------------------------------


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"TABSTREAM_API_TOKENS": "short-token=acme"}, "TABSTREAM_API_TOKENS"),
        ({"TABSTREAM_BUS": "rabbit://nowhere"}, "TABSTREAM_BUS"),
        ({"TABSTREAM_MAX_JSON_BODY_BYTES": "ten"}, "TABSTREAM_MAX_JSON_BODY_BYTES"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it_and_exit_2(
    tmp_path: Path, env: dict[str, str], variable: str
) -> None:
    import os
    import subprocess
    import sys

    tabstream = Path(sys.executable).parent / "tabstream"
    base = {k: v for k, v in os.environ.items() if not k.startswith("TABSTREAM_")}
    done = subprocess.run(
        [str(tabstream), "api", "--data-dir", str(tmp_path), "--port", "0"],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert variable in lines[0] and "Traceback" not in done.stderr


async def test_a_parquet_over_the_caps_is_refused_from_its_footer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow as pa

    from tabstream.producer_api import ingest

    def never(*_: Any, **__: Any) -> Any:
        raise AssertionError("the data was decompressed before the caps were checked")

    monkeypatch.setattr(ingest.pq, "read_table", never)
    wide = pa.table({f"c{i}": [1, 2] for i in range(5)})
    async for api in running(build_api(settings(tmp_path, max_columns=3))):
        files = {"file": ("wide.parquet", parquet_bytes(wide), "application/octet-stream")}
        r = await api.client.post("/v1/datasets", files=files, headers=AUTH_A)
        assert r.status_code == 422, r.text
        assert "5 columns; the limit is 3" in r.json()["detail"][0]["msg"]
        assert await _datasets(api) == []


async def test_an_overlong_column_name_is_a_422_and_nothing_is_stored(api: Api) -> None:
    csv = ("x," + "c" * 300 + "\n1,2\n").encode()
    r = await api.client.post(
        "/v1/datasets", files={"file": ("t.csv", csv, "text/csv")}, headers=AUTH_A
    )
    assert r.status_code == 422, r.text
    assert "position 1" in r.json()["detail"][0]["msg"]
    assert api.ctx.artifacts.keys("datasets") == []
    assert await _datasets(api) == []
