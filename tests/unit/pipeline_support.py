"""Helpers for pipeline tests: a local store holding a slice of a shared dataset, run()."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pyarrow.parquet as pq

from tabstream.adapters.artifacts.local import LocalArtifactStore
from tabstream.pipeline.options import FamilyOptions, PipelineOptions
from tabstream.pipeline.train import DatasetRef, RunResult, run
from tabstream.schemas.run import TrainerRunRequest

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
LABELS = {"credit_g": ("creditability", "binclass"), "segment": ("category", "multiclass"),
          "abalone": ("rings", "regression"), "bikeshare": ("bikers", "regression")}  # fmt: skip
ONE_THREAD = PipelineOptions(FamilyOptions(threads=1))
"""The options pipeline tests train with unless they say otherwise: one CPU thread per fit."""


def store_with(tmp: Path, name: str, rows: int) -> tuple[LocalArtifactStore, DatasetRef]:
    """A LocalArtifactStore under ``tmp`` holding the first ``rows`` rows of dataset ``name``."""
    store = LocalArtifactStore(tmp / "artifacts")
    table = pq.read_table(DATA / f"{name}.parquet").slice(0, rows)
    store.write_parquet(f"datasets/{name}.parquet", table)
    return store, DatasetRef(uuid4(), f"datasets/{name}.parquet")


def request(name: str, **kw: Any) -> TrainerRunRequest:
    """A small TrainerRunRequest for dataset ``name``."""
    label, kind = LABELS[name]
    body: dict[str, Any] = {"dataset_id": str(uuid4()),
                            "task": {"task_kind": kind, "label_column": label},
                            "model_types": ["xgboost"], "n_trials": 2, "n_splits": 3}  # fmt: skip
    body.update(kw)
    return TrainerRunRequest.model_validate(body)


def run_collect(
    store: LocalArtifactStore, ref: DatasetRef, req: TrainerRunRequest, **kw: Any
) -> tuple[RunResult, list[Any]]:
    """run() with a list-collecting emit; ``job_id`` defaults to a fresh one, ``options`` to
    ``ONE_THREAD``."""
    events: list[Any] = []
    job_id: UUID = kw.pop("job_id", uuid4())
    options: PipelineOptions = kw.pop("options", ONE_THREAD)
    result = run(req, ref, store, events.append, job_id=job_id, options=options, **kw)
    return result, events


def of_type(events: list[Any], name: str) -> list[Any]:
    """Events whose ``type`` is ``name``."""
    return [e for e in events if e.type == name]
