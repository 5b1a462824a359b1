"""POST /v1/trainer/run: lenient where the reference is (grid_size with one metric, a value on
the null ops), and the ``time_budget_s`` extension reaching the log."""

from __future__ import annotations

from typing import Any

import pytest

from tabstream.schemas import Comparison, RunRequested, decode
from tests.api.conftest import AUTH_A, Api, run_body, upload


async def _post(api: Api, **extra: Any) -> Any:
    dataset_id = await upload(api.client)
    return await api.client.post(
        "/v1/trainer/run", json=run_body(dataset_id, **extra), headers=AUTH_A
    )


async def _logged_run(api: Api, job_id: str) -> RunRequested:
    async for record in api.ctx.log.read(api.ctx.topics.commands("cpu")):
        env = decode(record.value)
        if isinstance(env.payload, RunRequested) and str(env.payload.job_id) == job_id:
            assert env.schema_version == 2
            return env.payload
    raise AssertionError(f"no RunRequested for {job_id} in the log")


@pytest.mark.parametrize("metrics", [{"metrics": ["rmse"]}, {}], ids=["one", "default"])
async def test_grid_size_with_one_metric_is_202_and_the_message_says_no_sweep(
    api: Api, metrics: dict[str, Any]
) -> None:
    r = await _post(api, grid_size=0.5, **metrics)
    assert r.status_code == 202, r.text
    message = r.json()["message"]
    assert message.startswith("job accepted on pool 'cpu'")
    assert "grid_size 0.5 ignored: no Pareto sweep" in message
    logged = await _logged_run(api, r.json()["job_id"])
    assert logged.request.grid_size == 0.5


async def test_grid_size_with_two_metrics_sweeps_without_a_notice(api: Api) -> None:
    r = await _post(api, grid_size=0.5, metrics=["rmse", "mae"])
    assert r.status_code == 202, r.text
    assert "ignored" not in r.json()["message"]


@pytest.mark.parametrize("op", ["is_null", "is_not_null"])
@pytest.mark.parametrize("value", [3, "x", [1, 2]])
async def test_a_value_on_the_null_ops_is_ignored(api: Api, op: str, value: Any) -> None:
    flt = {"kind": "cmp", "col": "x1", "op": op, "value": value}
    r = await _post(api, filter=flt)
    assert r.status_code == 202, r.text
    logged = await _logged_run(api, r.json()["job_id"])
    assert logged.request.filter == Comparison(col="x1", op=op)


async def test_time_budget_is_accepted_and_reaches_the_log(api: Api) -> None:
    r = await _post(api, time_budget_s=90)
    assert r.status_code == 202, r.text
    assert "ignored" not in r.json()["message"]
    logged = await _logged_run(api, r.json()["job_id"])
    assert logged.request.time_budget_s == 90.0
    job = await api.client.get(f"/v1/jobs/{r.json()['job_id']}", headers=AUTH_A)
    assert job.json()["request"]["time_budget_s"] == 90.0


async def test_without_a_time_budget_the_logged_request_has_none(api: Api) -> None:
    r = await _post(api)
    assert r.status_code == 202, r.text
    assert (await _logged_run(api, r.json()["job_id"])).request.time_budget_s is None


@pytest.mark.parametrize(
    ("budget", "error"),
    [
        (0, "greater_than"),
        (-5, "greater_than"),
        (7 * 86400 + 1, "less_than_equal"),
        ("soon", "float_parsing"),
    ],
)
async def test_a_bad_time_budget_is_a_422_naming_it(api: Api, budget: Any, error: str) -> None:
    r = await _post(api, time_budget_s=budget)
    assert r.status_code == 422, r.text
    (detail,) = r.json()["detail"]
    assert detail["loc"] == ["body", "time_budget_s"] and detail["type"] == error, r.text
