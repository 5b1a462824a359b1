"""A distillation run whose teacher_predict_url is a second tabstream API served on loopback
(allow-listed): our predict endpoint is a valid external teacher. The bearer token sent as a
teacher header appears in no event, note or log line."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import uvicorn

from tabstream.adapters.artifacts.local import LocalArtifactStore
from tabstream.adapters.teacher import HttpTeacher
from tabstream.bootstrap.api import build_api
from tabstream.pipeline.options import DistillOptions, FamilyOptions, PipelineOptions
from tabstream.pipeline.train import DatasetRef, run
from tabstream.schemas.run import TrainerRunRequest
from tests.api.conftest import TOKEN_A, Api, settings
from tests.api.test_models_support import register, table, train

SMALL = PipelineOptions(FamilyOptions(threads=2), DistillOptions(synthetic_rows=200))


@pytest.fixture
def teacher_api(tmp_path: Path) -> Iterator[tuple[Api, int, asyncio.AbstractEventLoop]]:
    """A second API under uvicorn on a free loopback port, on its own event loop thread."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = build_api(settings(tmp_path / "teacher"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    serving = asyncio.run_coroutine_threadsafe(server.serve(), loop)
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.05)
    yield Api(app, None), port, loop  # type: ignore[arg-type]
    server.should_exit = True
    serving.result(timeout=10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)


def test_distil_from_a_second_api_over_http(
    teacher_api: tuple[Api, int, asyncio.AbstractEventLoop],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    api, port, loop = teacher_api
    events, _ = train(api, "credit_g", rows=200)
    model_id = asyncio.run_coroutine_threadsafe(register(api, events), loop).result(timeout=30)
    store = LocalArtifactStore(tmp_path / "student")
    store.write_parquet("datasets/d.parquet", table("credit_g", 200))
    request = TrainerRunRequest.model_validate(
        {
            "dataset_id": str(uuid4()),
            "task": {"task_kind": "binclass", "label_column": "creditability"},
            "model_types": ["xgboost"],
            "n_trials": 1,
            "n_splits": 2,
            "teacher_predict_url": f"http://127.0.0.1:{port}/v1/models/{model_id}/predict",
            "teacher_predict_headers": {"Authorization": f"Bearer {TOKEN_A}"},
        }
    )
    teacher = HttpTeacher(
        str(request.teacher_predict_url),
        request.teacher_predict_headers,
        allowed=frozenset({"127.0.0.1"}),
    )
    emitted: list[Any] = []
    result = run(request, DatasetRef(uuid4(), "datasets/d.parquet"), store, emitted.append,
                 job_id=uuid4(), teacher=teacher, options=SMALL)  # fmt: skip
    assert 0.5 <= result.leaderboard[0].metrics["fidelity_agreement"] <= 1.0
    assert any("synthetic rows" in n for n in result.notes)
    dumped = json.dumps([e.model_dump(mode="json") for e in emitted]) + json.dumps(result.notes)
    out, err = capfd.readouterr()
    for text in (
        dumped,
        out,
        err,
        repr(request),
        json.dumps(request.redacted().model_dump(mode="json")),
    ):
        assert TOKEN_A not in text


def test_refused_teacher_url_fails_the_child_clearly(tmp_path: Path) -> None:
    from tabstream.bootstrap.child import build_teacher

    request = TrainerRunRequest.model_validate(
        {
            "dataset_id": str(uuid4()),
            "task": {"task_kind": "regression", "label_column": "y"},
            "teacher_predict_url": "http://169.254.169.254/latest",
        }
    )
    with pytest.raises(ValueError, match="metadata"):
        build_teacher(request, LocalArtifactStore(tmp_path))
