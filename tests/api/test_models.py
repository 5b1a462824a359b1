"""Models API: list/get, predict in the teacher protocol, 422s, cross-tenant 404, integrity."""

from __future__ import annotations

from typing import Any

import pytest

from tabstream.adapters.models.pipeline_server import PipelineModelServer
from tabstream.pipeline.predict import ModelCache, predict_samples
from tests.api.conftest import AUTH_A, AUTH_B, CSV, Api, run_body, upload
from tests.api.test_models_support import LABELS, body, register, train


@pytest.fixture(autouse=True)
def _threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABSTREAM_FAMILY_THREADS", "2")


async def _trained(api: Api, name: str) -> tuple[str, Any, dict[str, Any]]:
    events, data = train(api, name)
    model_id = await register(api, events)
    return model_id, events, body(data, LABELS[name][0])


@pytest.mark.parametrize("name", ["credit_g", "segment", "abalone"])
async def test_predict_round_trip_per_task_kind(api: Api, name: str) -> None:
    model_id, events, req = await _trained(api, name)
    r = await api.client.post(f"/v1/models/{model_id}/predict", json=req, headers=AUTH_A)
    assert r.status_code == 200, r.text
    out = r.json()
    (registered,) = [e for e in events if e.type == "ModelRegistered"]
    model = ModelCache(api.ctx.artifacts).get(model_id, registered.sha256)
    expected = predict_samples(model, req["samples"], req["feature_names"])
    assert out["predictions"] == expected["predictions"]
    assert len(out["predictions"]) == 5
    if LABELS[name][1] == "regression":
        assert out["probabilities"] is None and out["classes"] is None
    else:
        assert out["classes"] == registered.classes
        flat = [p for row in expected["probabilities"] for p in row]
        assert [p for row in out["probabilities"] for p in row] == pytest.approx(flat)
        assert all(sum(p) == pytest.approx(1.0) for p in out["probabilities"])
        assert set(out["predictions"]) <= set(out["classes"])


async def test_list_get_and_cross_tenant_404(api: Api) -> None:
    model_id, _, req = await _trained(api, "credit_g")
    listed = (await api.client.get("/v1/models", headers=AUTH_A)).json()
    assert [m["model_id"] for m in listed["items"]] == [model_id]
    got = (await api.client.get(f"/v1/models/{model_id}", headers=AUTH_A)).json()
    for key in ("task", "features", "classes", "metrics", "job_id", "sha256", "created_at"):
        assert key in got
    assert "tenant" not in got and {"name", "type"} <= set(got["features"][0])
    assert (await api.client.get("/v1/models", headers=AUTH_B)).json()["items"] == []
    assert (await api.client.get(f"/v1/models/{model_id}", headers=AUTH_B)).status_code == 404
    r = await api.client.post(f"/v1/models/{model_id}/predict", json=req, headers=AUTH_B)
    assert r.status_code == 404
    unknown = "00000000-0000-0000-0000-000000000000"
    r = await api.client.post(f"/v1/models/{unknown}/predict", json=req, headers=AUTH_A)
    assert r.status_code == 404


async def test_predict_422s(api: Api) -> None:
    model_id, _, req = await _trained(api, "credit_g")
    url = f"/v1/models/{model_id}/predict"
    dropped = req["feature_names"][:2]
    missing = {
        "samples": [row[2:] for row in req["samples"]],
        "feature_names": req["feature_names"][2:],
    }
    r = await api.client.post(url, json=missing, headers=AUTH_A)
    assert r.status_code == 422 and all(n in r.text for n in dropped)
    extra = {
        "samples": [[*row, 1] for row in req["samples"]],
        "feature_names": [*req["feature_names"], "zz"],
    }
    assert (await api.client.post(url, json=extra, headers=AUTH_A)).status_code == 200
    short = {"samples": [req["samples"][0][:-1]], "feature_names": req["feature_names"]}
    assert (await api.client.post(url, json=short, headers=AUTH_A)).status_code == 422
    nested = {
        "samples": [[{"a": 1}] * len(req["feature_names"])],
        "feature_names": req["feature_names"],
    }
    assert (await api.client.post(url, json=nested, headers=AUTH_A)).status_code == 422
    api.ctx.models = PipelineModelServer(api.ctx.artifacts, 512 * 1024 * 1024, max_rows=3)
    r = await api.client.post(url, json=req, headers=AUTH_A)
    assert r.status_code == 422 and "at most 3 rows" in r.text


async def test_digest_mismatch_is_refused_and_never_cached(api: Api) -> None:
    model_id, _, req = await _trained(api, "credit_g")
    key = f"models/{model_id}/m0/f0/file0"
    original = api.ctx.artifacts.get_bytes(key)
    api.ctx.artifacts.put_bytes(key, original[:-1] + bytes([original[-1] ^ 1]))
    url = f"/v1/models/{model_id}/predict"
    for _ in range(2):
        r = await api.client.post(url, json=req, headers=AUTH_A)
        assert r.status_code == 409 and "integrity check" in r.text
    assert not api.ctx.models.cached(model_id)
    api.ctx.artifacts.put_bytes(key, original)
    assert (await api.client.post(url, json=req, headers=AUTH_A)).status_code == 200


async def test_run_with_teacher_model_id_is_checked(api: Api) -> None:
    model_id, _, _ = await _trained(api, "credit_g")
    dataset_id = await upload(api.client, CSV)
    r = await api.client.post(
        "/v1/trainer/run", json=run_body(dataset_id, teacher_model_id=model_id), headers=AUTH_A
    )
    assert r.status_code == 422
    assert "teacher_model_id" in r.text and "lacks" in r.text
    other = await upload(api.client, CSV, AUTH_B)
    r = await api.client.post(
        "/v1/trainer/run", json=run_body(other, teacher_model_id=model_id), headers=AUTH_B
    )
    assert r.status_code == 404
