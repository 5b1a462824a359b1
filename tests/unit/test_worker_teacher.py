"""teacher_model_id in the worker: the digest comes from the log's ModelRegistered record (the
child verifies the bundle against it) and only the submitting tenant's models qualify."""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tabstream.adapters.bus.port import Record
from tabstream.bootstrap.child import build_teacher
from tabstream.consumer.ledger import JobLedger
from tabstream.consumer.runner import _teacher_digest
from tabstream.schemas.events import Envelope, ModelRegistered, Producer, encode, headers
from tests.unit.pipeline_support import of_type, request, run_collect, store_with


class _NoTail:
    def route(self, topic: str, handler: Any) -> None:
        pass


def _ledger_with(model: ModelRegistered, tenant: str) -> JobLedger:
    ledger = JobLedger(_NoTail(), "events")  # type: ignore[arg-type]
    env = Envelope.wrap(model, tenant=tenant, producer=Producer(service="worker", instance="w"))
    ledger.apply(Record("events", 0, 0, str(model.job_id), encode(env), headers(env)))
    return ledger


def _command(tenant: str, teacher: str | None) -> Any:
    run = SimpleNamespace(request=SimpleNamespace(teacher_model_id=teacher))
    return SimpleNamespace(run=run, tenant=tenant)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, ModelRegistered]:
    store, ref = store_with(tmp_path_factory.mktemp("teacher"), "credit_g", 120)
    _, events = run_collect(store, ref, request("credit_g", n_trials=1))
    (model,) = of_type(events, "ModelRegistered")
    return store, model


def test_digest_comes_from_the_log_for_the_same_tenant(
    trained: tuple[Any, ModelRegistered],
) -> None:
    _, model = trained
    ctx: Any = SimpleNamespace(ledger=_ledger_with(model, "acme"))
    assert _teacher_digest(ctx, _command("acme", str(model.model_id))) == model.sha256
    assert _teacher_digest(ctx, _command("acme", None)) is None
    with pytest.raises(ValueError, match="not a registered model of this tenant"):
        _teacher_digest(ctx, _command("other", str(model.model_id)))
    with pytest.raises(ValueError, match="not a registered model of this tenant"):
        _teacher_digest(ctx, _command("acme", str(uuid.uuid4())))


def test_child_refuses_a_bundle_that_differs_from_the_logged_digest(
    trained: tuple[Any, ModelRegistered], tmp_path: Path
) -> None:
    store, model = trained
    req = request("credit_g", n_trials=1, teacher_model_id=str(model.model_id))
    assert build_teacher(req, store, model.sha256) is not None
    with pytest.raises(ValueError):
        build_teacher(req, store, "0" * 64)
