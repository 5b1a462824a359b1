"""The Python SDK against a live server: upload -> run -> wait -> result -> predict."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pyarrow as pa
import pytest

from tabstream.client import ApiError, Client, JobFailed
from tabstream.schemas import BinclassTask, DatasetInfo, JobResultResponse
from tests.client.conftest import TINY_RUN, Server, tiny_frame

pytestmark = pytest.mark.slow


@pytest.fixture
def api(server: Server) -> Client:
    return Client(server.url, server.token)


def test_upload_run_wait_result_predict(api: Client, tiny_csv: Path) -> None:
    dataset = api.upload_dataset(tiny_frame(), name="frame")
    assert isinstance(dataset, DatasetInfo) and dataset.rows == 160
    job = api.run(dataset.dataset_id, BinclassTask(label_column="y"), **TINY_RUN)
    assert job.wait(timeout=120) is job
    assert job.info["status"] == "completed" and job.status == "completed"
    result = job.result()
    assert isinstance(result, JobResultResponse) and result.result_data is not None
    assert result.result_data["leaderboard"][0]["family"] == "xgboost"
    types = [e["type"] for e in job.events()]
    assert types[0] == "RunRequested" and types[-1] == "JobCompleted"
    assert [e["type"] for e in job.history()] == types
    model = job.best_model()
    assert set(model.feature_names) == {"x1", "city", "ts"}
    got = model.predict(tiny_frame(rows=20, seed=1))
    assert len(got.predictions) == 20 and got.classes == [0, 1]
    assert got.probabilities is not None and len(got.probabilities[0]) == 2
    assert len(model.predict(tiny_csv).to_frame()) == 160


def test_upload_arrow_table_and_listings(api: Client) -> None:
    table = pa.Table.from_pandas(tiny_frame(rows=40), preserve_index=False)
    dataset = api.upload_dataset(table, name="arrow")
    assert api.dataset(dataset.dataset_id).name == "arrow"
    assert dataset.dataset_id in {d.dataset_id for d in api.datasets()}
    assert isinstance(api.jobs(), list) and isinstance(api.models(), list)


def test_wait_polls_when_sse_fails(api: Client, server: Server) -> None:
    dataset = api.upload_dataset(tiny_frame(rows=60), name="poll")
    job = api.run(dataset.dataset_id, {"task_kind": "binclass", "label_column": "y"}, **TINY_RUN)
    job.events = lambda *a, **k: (_ for _ in ()).throw(httpx.ReadError("boom"))  # type: ignore[method-assign]
    assert job.wait(timeout=120, poll=0.2).info["status"] == "completed"


def test_failures_raise(api: Client) -> None:
    dataset = api.upload_dataset(tiny_frame(rows=60), name="fail")
    with pytest.raises(ApiError) as info:
        api.run(dataset.dataset_id, {"task_kind": "binclass", "label_column": "nope"})
    assert info.value.status == 422 and "label_column" in str(info.value)
    with pytest.raises(ApiError) as missing:
        api.job(uuid.uuid4())
    assert missing.value.status == 404
    job = api.run(dataset.dataset_id, {"task_kind": "binclass", "label_column": "x1"}, **TINY_RUN)
    with pytest.raises(JobFailed) as failed:
        job.wait(timeout=120)
    assert failed.value.status == "failed" and "x1" in failed.value.message


def test_retries_on_503_then_succeeds() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) < 3:
            return httpx.Response(503, json={"detail": "event log unavailable"})
        return httpx.Response(200, json={"items": [], "next_cursor": None})

    client = Client("http://x", "t", transport=httpx.MockTransport(handler), backoff_s=0.01)
    assert client.jobs() == [] and len(calls) == 3


def test_gives_up_with_the_server_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"detail": "event log unavailable"})

    client = Client("http://x", "t", transport=httpx.MockTransport(handler), backoff_s=0.01)
    with pytest.raises(ApiError) as info:
        client.jobs()
    assert info.value.status == 503 and "event log unavailable" in str(info.value)


def test_unreachable_server() -> None:
    client = Client("http://127.0.0.1:9", "t", retries=1, backoff_s=0.01)
    with pytest.raises(ApiError) as info:
        client.datasets()
    assert info.value.status == 0 and "cannot reach" in str(info.value)
