"""RunRequested v2 (the request's ``time_budget_s``): v1 records upcast to v2 without it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tabstream.schemas import Envelope, Producer, RunRequested, TrainerRunRequest, decode, encode
from tabstream.schemas.upcasters import upcast

ASSETS = Path(__file__).resolve().parents[1] / "replay" / "assets"
DS = uuid.uuid4()


def run_requested(**request: Any) -> RunRequested:
    body = {"dataset_id": str(DS), "task": {"label_column": "y", "task_kind": "regression"}}
    return RunRequested(
        job_id=uuid.uuid4(),
        dataset_id=DS,
        request=TrainerRunRequest.model_validate(body | request),
        pool="cpu",
        submitted_at=datetime(2024, 5, 1, tzinfo=UTC),
        request_digest="d",
    )


def as_v1(payload: RunRequested) -> dict[str, Any]:
    """A v1 record of ``payload``: the shape written before ``time_budget_s`` existed."""
    env = Envelope.wrap(payload, tenant="acme", producer=Producer(service="api", instance="a"))
    data: dict[str, Any] = json.loads(encode(env))
    del data["payload"]["request"]["time_budget_s"]
    return data | {"schema_version": 1}


def test_run_requested_is_v2() -> None:
    assert RunRequested.SCHEMA_VERSION == 2


def test_a_v1_run_requested_decodes_to_v2_without_a_time_budget() -> None:
    v1 = as_v1(run_requested(n_trials=7))
    env = decode(json.dumps(v1).encode())
    assert env.schema_version == 2 and isinstance(env.payload, RunRequested)
    assert env.payload.request.time_budget_s is None
    assert env.payload.request.n_trials == 7
    assert upcast(v1)["payload"]["request"] == v1["payload"]["request"]


def test_the_frozen_v1_commands_decode_to_v2() -> None:
    lines = [json.loads(x) for x in (ASSETS / "log_v1.jsonl").read_text().splitlines()]
    runs = [json.loads(x["value"]) for x in lines if '"RunRequested"' in x["value"]]
    assert runs and {r["schema_version"] for r in runs} == {1}
    for raw in runs:
        env = decode(json.dumps(raw).encode())
        assert env.schema_version == 2 and isinstance(env.payload, RunRequested)
        assert env.payload.request.time_budget_s is None


def test_a_v2_run_requested_round_trips_its_time_budget() -> None:
    env = Envelope.wrap(
        run_requested(time_budget_s=120.5),
        tenant="acme",
        producer=Producer(service="api", instance="a"),
    )
    assert env.schema_version == 2
    back = decode(encode(env))
    assert isinstance(back.payload, RunRequested) and back.payload.request.time_budget_s == 120.5


@pytest.mark.parametrize("request_value", ["not a request", None, 3])
def test_a_v1_record_with_a_broken_request_is_undecodable_not_a_crash(request_value: Any) -> None:
    v1 = as_v1(run_requested())
    v1["payload"]["request"] = request_value
    with pytest.raises(ValueError, match="cannot upcast RunRequested v1"):
        decode(json.dumps(v1).encode())
