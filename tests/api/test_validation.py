"""422s name the field (``loc`` ends with it) for every seed rule, and never echo secrets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.conftest import AUTH_A, Api, run_body, upload

DATASET = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
URL = "https://teacher.example/predict"
SEQ = {"task_kind": "forecasting", "horizon": 3, "label_column": "y"}


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"teacher_model_id": DATASET, "teacher_predict_url": URL}, ["teacher_predict_url"]),
        ({"teacher_predict_headers": {"X-Key": "v"}}, ["teacher_predict_headers"]),
        ({"metrics": ["auc"]}, ["metrics"]),
        ({"metrics": ["rmse", "rmse"]}, ["metrics"]),
        ({"time_budget_s": 0}, ["time_budget_s"]),
        ({"metrics": ["rmse", "mae"], "grid_size": 0.3}, ["grid_size"]),
        ({"n_splits": 1}, ["n_splits"]),
        ({"teacher_predict_url": "ftp://x"}, ["teacher_predict_url"]),
        ({"filter": {"kind": "cmp", "col": "x", "op": "in", "value": 3}}, ["cmp", "value"]),
        ({"filter": {"kind": "cmp", "col": "x", "op": "eq", "value": [3]}}, ["cmp", "value"]),
        (
            {"task": {**SEQ, "id_column": "y", "timestamp_column": "t"}},
            ["forecasting", "id_column"],
        ),
        (
            {"task": {**SEQ, "id_column": "i", "timestamp_column": "y"}},
            ["forecasting", "timestamp_column"],
        ),
    ],
)
async def test_cross_field_rules_name_the_field(
    api: Api, change: dict[str, Any], loc: list[str]
) -> None:
    r = await api.client.post(
        "/v1/trainer/run", json={**run_body(DATASET), **change}, headers=AUTH_A
    )
    assert r.status_code == 422, r.text
    assert any(e["loc"][-len(loc) :] == loc for e in r.json()["detail"]), r.text


@pytest.mark.parametrize(
    "change",
    [
        {"teacher_predict_url": URL, "teacher_predict_headers": {"X-Key": "s3cret\n"}},
        {"teacher_predict_url": URL, "teacher_predict_headers": {"X-Key": ["s3cret"]}},
        {"teacher_predict_headers": {"X-Key": "s3cret"}},
        {"n_trials": "many", "teacher_predict_headers": {"X-Key": "s3cret"}},
        {"task": None, "teacher_predict_headers": {"X-Key": "s3cret"}},
    ],
)
async def test_422_never_echoes_teacher_headers(api: Api, change: dict[str, Any]) -> None:
    r = await api.client.post(
        "/v1/trainer/run", json={**run_body(DATASET), **change}, headers=AUTH_A
    )
    assert r.status_code == 422, r.text
    assert "s3cret" not in r.text


async def test_422_for_a_body_that_is_not_an_object_redacts_too(api: Api) -> None:
    body = [{"teacher_predict_headers": {"X-Key": "s3cret"}}]
    r = await api.client.post("/v1/trainer/run", json=body, headers=AUTH_A)
    assert r.status_code == 422
    assert "s3cret" not in r.text


@pytest.mark.parametrize(
    ("content", "content_type", "kind"),
    [
        (b"", "application/json", "missing"),
        (b'{"dataset_id": ', "application/json", "json_invalid"),
        (
            b'xbA\xe7\x15l\xff {"teacher_predict_headers": "s3cret"}',
            "application/json",
            "json_invalid",
        ),
        (b'{"teacher_predict_headers": {"X": "s3cret"}}', "text/plain", "model_attributes_type"),
    ],
)
async def test_a_body_that_is_missing_not_json_or_not_declared_json_is_a_422_on_body(
    api: Api, content: bytes, content_type: str, kind: str
) -> None:
    headers = {**AUTH_A, "content-type": content_type}
    r = await api.client.post("/v1/trainer/run", content=content, headers=headers)
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert error["type"] == kind and error["loc"][0] == "body"
    assert "s3cret" not in r.text


async def test_a_json_body_without_content_type_is_accepted_as_json(api: Api) -> None:
    dataset_id = await upload(api.client)
    content = json.dumps(run_body(dataset_id)).encode()
    r = await api.client.post("/v1/trainer/run", content=content, headers=AUTH_A)
    assert r.status_code == 202, r.text


async def test_an_idempotency_key_over_256_characters_is_a_422_naming_the_header(api: Api) -> None:
    headers = {**AUTH_A, "Idempotency-Key": "k" * 257}
    r = await api.client.post("/v1/trainer/run", json=run_body(DATASET), headers=headers)
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert error["loc"] == ["header", "Idempotency-Key"] and error["type"] == "string_too_long"
