"""A client written against the reference API alone: it uses only the field names, routes and
shapes of ``../shared/seed`` (the trainer-run page and REFERENCE-NOTES.md), plain httpx, and
nothing of tabstream's own SDK."""

from __future__ import annotations

import io
import time
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

POLL_S = 0.5


class ReferenceClient:
    """upload -> PUT -> dataset -> trainer/run -> results -> predict job -> download."""

    def __init__(self, url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=60
        )

    def upload(self, data: bytes, file_format: str) -> dict[str, Any]:
        """POST /v1/uploads, then PUT the bytes to ``upload_url``: the connection_config."""
        created = self._ok(self.http.post("/v1/uploads", json={"file_format": file_format}))
        assert created["connection_config"]["connector_type"] == "file_upload"
        assert isinstance(created["expires_in"], int)
        put = httpx.put(
            created["upload_url"],
            content=data,
            headers={"Content-Type": created["content_type"]},
            timeout=60,
        )
        assert put.status_code < 300, put.text
        return dict(created["connection_config"])

    def create_dataset(self, connection_config: dict[str, Any]) -> str:
        """POST /v1/datasets with the connection_config: the dataset id."""
        created = self._ok(
            self.http.post("/v1/datasets", json={"connection_config": connection_config})
        )
        return str(created["id"])

    def get_dataset(self, dataset_id: str) -> dict[str, Any]:
        """GET /v1/datasets/{dataset_id}."""
        return self._ok(self.http.get(f"/v1/datasets/{dataset_id}"))

    def trainer_run(self, body: dict[str, Any]) -> str:
        """POST /v1/trainer/run: the job id."""
        return str(self._ok(self.http.post("/v1/trainer/run", json=body))["job_id"])

    def predict_job(self, model_id: str, dataset: dict[str, Any]) -> str:
        """POST /v1/models/{model_id}/predict with a Dataset: the job id."""
        submitted = self._ok(
            self.http.post(f"/v1/models/{model_id}/predict", json={"dataset": dataset})
        )
        assert submitted["status"] in ("pending", "running", "completed", "failed")
        assert isinstance(submitted["message"], str)
        return str(submitted["job_id"])

    def wait_result(self, job_id: str, timeout_s: float = 300) -> dict[str, Any]:
        """GET /v1/results/{job_id} until the job is finished."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            response = self.http.get(f"/v1/results/{job_id}")
            if response.status_code == 200:
                result = response.json()
                assert result["status"] in ("completed", "failed")
                return dict(result)
            assert response.status_code == 202, response.text
            time.sleep(POLL_S)
        raise AssertionError(f"job {job_id} did not finish in {timeout_s} s")

    def download(self, presigned_url: str) -> pa.Table:
        """GET a presigned URL (no authorization header) and read the Parquet it serves."""
        response = httpx.get(presigned_url, timeout=60)
        assert response.status_code == 200, response.text
        return pq.read_table(io.BytesIO(response.content))

    def _ok(self, response: httpx.Response) -> dict[str, Any]:
        assert response.status_code < 300, f"{response.status_code}: {response.text}"
        return dict(response.json())
