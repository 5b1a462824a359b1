"""Helpers for the models API tests: train a small model into an API's artifact store and
register it through the API's own event log (as a worker would)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from uuid import uuid4

import pyarrow as pa
import pyarrow.parquet as pq

from tabstream.pipeline.options import FamilyOptions, PipelineOptions
from tabstream.pipeline.train import DatasetRef, run
from tabstream.schemas.run import TrainerRunRequest
from tests.api.conftest import Api

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
LABELS = {"credit_g": ("creditability", "binclass"), "segment": ("category", "multiclass"),
          "abalone": ("rings", "regression")}  # fmt: skip
TWO_THREADS = PipelineOptions(FamilyOptions(threads=2))


def table(name: str, rows: int) -> pa.Table:
    """The first ``rows`` rows of a shared dataset."""
    return pq.read_table(DATA / f"{name}.parquet").slice(0, rows)


def train(api: Api, name: str, rows: int = 160, **extra: Any) -> tuple[list[Any], pa.Table]:
    """Run the pipeline on a slice of ``name`` in the API's store (two threads unless ``extra``
    names ``options``); returns (events, data)."""
    extra.setdefault("options", TWO_THREADS)
    data = table(name, rows)
    key = f"datasets/{uuid4()}/data.parquet"
    api.ctx.artifacts.write_parquet(key, data)
    label, kind = LABELS[name]
    request = TrainerRunRequest.model_validate(
        {
            "dataset_id": str(uuid4()),
            "task": {"task_kind": kind, "label_column": label},
            "model_types": ["xgboost"],
            "n_trials": 1,
            "n_splits": None,
        }
    )
    events: list[Any] = []
    run(request, DatasetRef(uuid4(), key), api.ctx.artifacts, events.append, job_id=uuid4(),
        **extra)  # fmt: skip
    return events, data


async def register(api: Api, events: list[Any], tenant: str = "tenant-a") -> str:
    """Publish the run's ModelRegistered events; wait until the projection has them."""
    model_ids = []
    for event in events:
        if event.type == "ModelRegistered":
            await api.ctx.publish(api.ctx.topics.events, event, tenant, str(event.job_id))
            model_ids.append(str(event.model_id))
    for _ in range(200):
        if all(api.ctx.read_model.get_model(tenant, m) for m in model_ids):
            return model_ids[0]
        await asyncio.sleep(0.02)
    raise AssertionError("the projection did not fold ModelRegistered")


def body(data: pa.Table, label: str, rows: int = 5) -> dict[str, Any]:
    """A teacher-protocol body of the first ``rows`` rows, features in reverse order."""
    names = [n for n in data.column_names if n != label][::-1]
    part = data.slice(0, rows).select(names)
    cells = [[_cell(v) for v in row.values()] for row in part.to_pylist()]
    return {"samples": cells, "feature_names": names}


def _cell(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
