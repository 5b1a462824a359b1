"""``tabstream run --time-limit`` and ``Client.run(time_budget_s=...)`` put ``time_budget_s`` in
the request body (in process: the SDK talks to an httpx MockTransport)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tabstream.cli import app, client_commands
from tabstream.client import Client

DATASET = str(uuid.uuid4())
JOB = str(uuid.uuid4())


class Recorder:
    """A fake API: records run bodies and answers 202."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/trainer/run"
        self.bodies.append(json.loads(request.content))
        answer = {"job_id": JOB, "status": "pending", "message": "ok", "dataset_id": DATASET}
        return httpx.Response(202, json=answer)

    def client(self, *_: Any) -> Client:
        return Client("http://api.test", "t", transport=httpx.MockTransport(self))


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    rec = Recorder()
    monkeypatch.setattr(client_commands, "connect", rec.client)
    return rec


def run_cli(*extra: str) -> Any:
    argv = ["run", "--dataset", DATASET, "--label", "y", "--task", "binclass", *extra]
    return CliRunner().invoke(app, argv)


def test_time_limit_reaches_the_request(recorder: Recorder) -> None:
    done = run_cli("--models", "xgboost", "--time-limit", "90")
    assert done.exit_code == 0, done.output
    (body,) = recorder.bodies
    assert body["time_budget_s"] == 90.0 and body["model_types"] == ["xgboost"]


def test_without_time_limit_the_request_has_none(recorder: Recorder) -> None:
    assert run_cli().exit_code == 0
    assert "time_budget_s" not in recorder.bodies[0]


@pytest.mark.parametrize("value", ["0", "-3"])
def test_a_non_positive_time_limit_is_refused_naming_the_field(
    recorder: Recorder, value: str
) -> None:
    done = run_cli("--time-limit", value)
    assert done.exit_code == 2 and "time_budget_s" in done.output, done.output
    assert recorder.bodies == []


def test_sdk_run_sends_time_budget_s(recorder: Recorder) -> None:
    with recorder.client() as api:
        task = {"task_kind": "binclass", "label_column": "y"}
        job = api.run(DATASET, task, time_budget_s=120, model_types=["xgboost"])
    assert job.id == JOB and recorder.bodies[0]["time_budget_s"] == 120.0
