"""The dashboard's shell (public, outside the OpenAPI schema) and GET /v1/jobs/{id}/trials."""

from __future__ import annotations

import uuid

from tabstream.schemas import TrialCompleted
from tests.api.conftest import AUTH_A, AUTH_B, Api, submit, upload
from tests.api.workers import emit, start


async def test_shell_is_public_with_a_strict_csp(api: Api) -> None:
    r = await api.client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert '<script type="module" src="/static/js/app.js">' in r.text
    for path, kind in [
        ("/static/js/app.js", "javascript"),
        ("/static/js/views/job.js", "javascript"),
        ("/static/css/app.css", "text/css"),
    ]:
        asset = await api.client.get(path)
        assert asset.status_code == 200 and kind in asset.headers["content-type"], path
    assert (await api.client.get("/static/nope.js")).status_code == 404
    # The data is not public.
    assert (await api.client.get("/v1/jobs")).status_code == 401


async def test_openapi_has_the_api_not_the_dashboard(api: Api) -> None:
    paths = (await api.client.get("/openapi.json")).json()["paths"]
    assert "/" not in paths
    assert not any(p.startswith("/static") for p in paths)
    assert "/v1/jobs/{job_id}/trials" in paths
    assert (await api.client.get("/docs")).status_code == 200


async def test_trials_in_order_and_tenant_scoped(api: Api) -> None:
    dataset = await upload(api.client)
    job = await submit(api.client, dataset)
    r = await api.client.get(f"/v1/jobs/{job}/trials", headers=AUTH_A)
    assert r.status_code == 200 and r.json() == {"job_id": job, "items": []}
    await start(api.ctx, "tenant-a", job)
    for seq, (row, trial, score) in enumerate([(1, 0, 0.3), (0, 1, 0.6), (0, 0, 0.5)], start=1):
        payload = TrialCompleted(
            job_id=uuid.UUID(job),
            row=row,
            family="xgboost",
            trial=trial,
            state="complete",
            params={"max_depth": 3},
            fold_metrics=[{"rmse": score}],
            metrics={"rmse": score},
            score=-score,
            fit_seconds=0.1,
            predict_seconds=0.01,
            device="cpu",
        )
        await emit(api.ctx, "tenant-a", payload, seq)
    items = (await api.client.get(f"/v1/jobs/{job}/trials", headers=AUTH_A)).json()["items"]
    assert [(t["row"], t["trial"]) for t in items] == [(0, 0), (0, 1), (1, 0)]
    assert items[0]["metrics"] == {"rmse": 0.5} and items[0]["params"] == {"max_depth": 3}
    assert "tenant" not in items[0]
    assert (await api.client.get(f"/v1/jobs/{job}/trials", headers=AUTH_B)).status_code == 404
    missing = f"/v1/jobs/{uuid.uuid4()}/trials"
    assert (await api.client.get(missing, headers=AUTH_A)).status_code == 404
    assert (await api.client.get(f"/v1/jobs/{job}/trials")).status_code == 401
