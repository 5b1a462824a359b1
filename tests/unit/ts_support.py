"""Helpers for the forecasting and sequence tests: bikeshare tables and a store holding one."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tabstream.adapters.artifacts.local import LocalArtifactStore
from tabstream.pipeline.train import DatasetRef
from tabstream.schemas.run import TrainerRunRequest
from tests.unit.pipeline_support import DATA


def bikeshare(rows: int | None = None) -> pa.Table:
    """Bikeshare (hourly 2011) with a constant ``store`` id column; the first ``rows`` rows."""
    table = pq.read_table(DATA / "bikeshare.parquet")
    table = table.slice(0, rows) if rows is not None else table
    return table.append_column("store", pa.array(["dc"] * table.num_rows))


def bikeshare_days() -> pa.Table:
    """Bikeshare rows grouped by day (``day_id``): ``workingday`` is constant per day."""
    table = pq.read_table(DATA / "bikeshare.parquet")
    day = pc.strftime(table.column("ts"), "%Y-%m-%d")
    drop = ["weekday", "holiday", "day", "mnth", "season"]  # would give the label away
    return table.append_column("day_id", day).drop_columns(drop)


def stored(tmp: Path, table: pa.Table) -> tuple[LocalArtifactStore, DatasetRef]:
    """A LocalArtifactStore under ``tmp`` holding ``table``."""
    store = LocalArtifactStore(tmp / "artifacts")
    store.write_parquet("datasets/t.parquet", table)
    return store, DatasetRef(uuid4(), "datasets/t.parquet")


def ts_request(task: dict[str, Any], **kw: Any) -> TrainerRunRequest:
    """A tiny xgboost TrainerRunRequest for ``task``."""
    body: dict[str, Any] = {"dataset_id": str(uuid4()), "task": task, "model_types": ["xgboost"],
                            "n_trials": 2, "n_splits": None}  # fmt: skip
    return TrainerRunRequest.model_validate(body | kw)
