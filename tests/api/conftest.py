"""API test fixtures: the app from bootstrap on the embedded bus in a temp data dir."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI

from tabstream.bootstrap.api import build_api
from tabstream.producer_api.context import ApiContext
from tabstream.settings import ApiSettings

TOKEN_A = "token-aaaaaaaaaaaaaaaaaaaaaaaaaaaa"
TOKEN_B = "token-bbbbbbbbbbbbbbbbbbbbbbbbbbbb"
TOKENS = f"{TOKEN_A}=tenant-a,{TOKEN_B}=tenant-b"
AUTH_A = {"Authorization": f"Bearer {TOKEN_A}"}
AUTH_B = {"Authorization": f"Bearer {TOKEN_B}"}
CSV = b"x1,x2,cat,y,label\n" + b"".join(
    f"{i},{i * 0.5},{'ab'[i % 2]},{i * 1.5},{'yes' if i % 3 else 'no'}\n".encode()
    for i in range(40)
)


@dataclass
class Api:
    """A running app, its client and its context."""

    app: FastAPI
    client: httpx.AsyncClient

    @property
    def ctx(self) -> ApiContext:
        ctx: ApiContext = self.app.state.ctx
        return ctx


def settings(tmp_path: Path, **overrides: Any) -> ApiSettings:
    """ApiSettings for tests (embedded bus in ``tmp_path``)."""
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "api_tokens": TOKENS,
        "secret_key": "k" * 20 + "-random-test-secret-value-123456",
    }
    return ApiSettings(**{**values, **overrides})


async def running(app: FastAPI) -> AsyncIterator[Api]:
    """Start the app's lifespan and yield a client bound to it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield Api(app, client)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """The API on the embedded bus."""
    async for running_api in running(build_api(settings(tmp_path))):
        yield running_api


def parquet_bytes(table: pa.Table) -> bytes:
    """``table`` as Parquet bytes."""
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


async def upload(client: httpx.AsyncClient, data: bytes = CSV, headers: Any = None) -> str:
    """Register a dataset and return its id."""
    r = await client.post(
        "/v1/datasets",
        files={"file": ("train.csv", data, "text/csv")},
        data={"name": "train"},
        headers=headers or AUTH_A,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["dataset_id"])


def run_body(dataset_id: str, **extra: Any) -> dict[str, Any]:
    """A valid regression TrainerRun body."""
    return {
        "dataset_id": dataset_id,
        "task": {"label_column": "y", "task_kind": "regression"},
        "model_types": ["xgboost"],
        **extra,
    }


async def submit(
    client: httpx.AsyncClient, dataset_id: str, headers: Any = None, **extra: Any
) -> str:
    """Submit a run and return its job id."""
    r = await client.post(
        "/v1/trainer/run", json=run_body(dataset_id, **extra), headers=headers or AUTH_A
    )
    assert r.status_code == 202, r.text
    return str(r.json()["job_id"])
