"""Schemathesis over the OpenAPI schema: no operation answers 5xx, whatever it is sent.

The app runs on the embedded bus in a temp data dir, authenticated with a static token.
Each operation gets a bounded number of positive and negative examples from a fixed seed
(``derandomize``); ids in paths and bodies are sometimes swapped for real ones (a registered
dataset, a submitted job) so the checks behind the 404s run too.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi

from tabstream.bootstrap.api import build_api
from tests.api.conftest import AUTH_A, CSV, run_body
from tests.api.conftest import settings as api_settings

EXAMPLES = 20
RUNAWAY_S = 180.0  # ~10 s on an idle 2-core box; a guard, not a benchmark


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, dict[str, str]]]:
    """The app (lifespan started by schemathesis' ASGI client) and real ids to fuzz with."""
    app = build_api(api_settings(Path(tmp_path_factory.mktemp("schemathesis"))))
    try:
        with asgi.get_client(app) as client:  # type: ignore[arg-type]
            r = client.post(
                "/v1/datasets", files={"file": ("t.csv", CSV, "text/csv")}, headers=AUTH_A
            )
            assert r.status_code == 201, r.text
            dataset_id = r.json()["dataset_id"]
            r = client.post("/v1/trainer/run", json=run_body(dataset_id), headers=AUTH_A)
            assert r.status_code == 202, r.text
            yield app, {"dataset_id": dataset_id, "job_id": r.json()["job_id"]}
    finally:
        asgi.shutdown_lifespans()


def _with_real_ids(case: Any, ids: dict[str, str], pick: random.Random) -> Any:
    """Half the time, replace generated ids (path and body) by real ones."""
    if pick.random() < 0.5:
        return case
    for name, value in ids.items():
        if case.path_parameters and name in case.path_parameters:
            case.path_parameters[name] = value
        if isinstance(case.body, dict) and name in case.body:
            case.body[name] = value
    return case


def _fuzz(operation: Any, ids: dict[str, str], failures: list[str]) -> None:
    pick = random.Random(operation.label)
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case = _with_real_ids(case, ids, pick)
        try:
            case.call_and_validate(headers=AUTH_A, checks=[not_a_server_error])
        except Exception as exc:  # keep going: report every failing operation
            failures.append(f"{operation.label}: {exc}\n{case.as_curl_command()}")

    check()


def test_no_operation_answers_5xx(fuzzed: tuple[FastAPI, dict[str, str]]) -> None:
    """Every operation, positive and negative examples: never a server error."""
    app, ids = fuzzed
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    schema.config.update(headers=AUTH_A)
    started, failures, seen = time.monotonic(), list[str](), 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        _fuzz(operation, ids, failures)
        seen += 1
    assert seen >= 15
    assert not failures, "\n\n".join(failures[:10])
    assert time.monotonic() - started < RUNAWAY_S
