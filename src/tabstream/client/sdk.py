"""Python SDK over the tabstream REST API (httpx).

    from tabstream.client import Client

    with Client("http://127.0.0.1:8000", token) as ts:
        ds = ts.upload_dataset("train.csv")
        job = ts.run(ds.dataset_id, task={"task_kind": "binclass", "label_column": "y"},
                     model_types=["xgboost"], n_trials=4)
        job.wait()
        print(job.result().result_data["leaderboard"])
        print(ts.model(job.info["best_model_id"]).predict(frame).predictions)

Requests are retried with exponential backoff on 502/503/504 and connection errors; runs
carry an ``Idempotency-Key`` so a retried submission never creates a second job.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tabstream.client.api_errors import ApiError, JobFailed, detail_of
from tabstream.client.io_helpers import (
    TERMINAL_EVENTS,
    TERMINAL_STATUSES,
    parse_sse,
    table_bytes,
    upload_bytes,
)
from tabstream.client.model_handle import Model, columns_spec
from tabstream.schemas import DatasetInfo, JobResultResponse, TrainerRunRequest
from tabstream.settings import ClientSettings

DEFAULT_URL = "http://127.0.0.1:8000"
RETRY_STATUSES = frozenset({502, 503, 504})
_SSE_TIMEOUT = httpx.Timeout(10.0, read=60.0)


class Client:
    """A tabstream API client; ``url`` / ``token`` default to TABSTREAM_URL / TABSTREAM_TOKEN."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        retries: int = 4,
        backoff_s: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        env = ClientSettings()
        self.url = (url or env.url or DEFAULT_URL).rstrip("/")
        token = token or (env.token.get_secret_value() if env.token else None)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.retries, self.backoff_s = retries, backoff_s
        self.http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    # -- transport ---------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request, retrying 502/503/504 and connection errors; ApiError on >= 400."""
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.http.request(method, path, **kwargs)
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ConnectTimeout) as exc:
                if last:
                    raise ApiError(0, str(exc), f"cannot reach {self.url}: {exc}") from None
                self._sleep(attempt, None)
                continue
            if response.status_code in RETRY_STATUSES and not last:
                self._sleep(attempt, response.headers.get("retry-after"))
                continue
            if response.status_code >= 400:
                raise ApiError(response.status_code, detail_of(response))
            return response
        raise AssertionError("unreachable")

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff_s * (2**attempt)
        if retry_after and retry_after.isdigit():
            delay = min(max(delay, float(retry_after)), 30.0)
        time.sleep(delay)

    def get_json(self, path: str, **params: Any) -> Any:
        """GET ``path`` and decode the JSON body (None params are dropped)."""
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean).json()

    # -- datasets ----------------------------------------------------------------------------

    def upload_dataset(self, data: str | Path | Any, name: str | None = None) -> DatasetInfo:
        """Register a dataset from a CSV/Parquet path, a pandas DataFrame or a pyarrow Table."""
        if isinstance(data, str | Path):
            path = Path(data)
            content, filename = path.read_bytes(), path.name
        else:
            content, filename = table_bytes(data)
        form = {"name": name} if name else {}
        files = {"file": (filename, content, "application/octet-stream")}
        response = self.request("POST", "/v1/datasets", files=files, data=form)
        return _dataset_info(response.json())

    def upload_file(
        self,
        data: str | Path | Any,
        *,
        name: str | None = None,
        columns: list[str] | None = None,
        filter: dict[str, Any] | None = None,
    ) -> DatasetInfo:
        """Register a dataset through the reference API's upload flow (POST /v1/uploads, PUT
        the bytes to the signed ``upload_url``, POST /v1/datasets with the upload's
        ``connection_config``), keeping only ``columns`` and the rows ``filter`` selects."""
        config = self.upload(data)
        body: dict[str, Any] = {"connection_config": config, "columns": columns_spec(columns)}
        body.update(filter=filter, name=name)
        clean = {k: v for k, v in body.items() if v is not None}
        return _dataset_info(self.request("POST", "/v1/datasets", json=clean).json())

    def upload(self, data: str | Path | Any) -> dict[str, Any]:
        """Upload a CSV/Parquet path, a DataFrame or a pyarrow Table (POST /v1/uploads, then
        one PUT to the signed URL); the completed upload's ``connection_config``."""
        content, file_format = upload_bytes(data)
        created = self.request("POST", "/v1/uploads", json={"file_format": file_format}).json()
        headers = {"Content-Type": created["content_type"]}
        put = self.http.put(created["upload_url"], content=content, headers=headers)
        if put.status_code >= 400:
            raise ApiError(put.status_code, detail_of(put))
        return dict(put.json()["connection_config"])

    def datasets(self, limit: int = 50) -> list[DatasetInfo]:
        """The caller's datasets (first page)."""
        page = self.get_json("/v1/datasets", limit=limit)
        return [_dataset_info(d) for d in page["items"]]

    def dataset(self, dataset_id: str | uuid.UUID) -> DatasetInfo:
        """One dataset."""
        return _dataset_info(self.get_json(f"/v1/datasets/{dataset_id}"))

    # -- runs and jobs -----------------------------------------------------------------------

    def run(
        self,
        dataset_id: str | uuid.UUID,
        task: dict[str, Any] | Any,
        *,
        idempotency_key: str | None = None,
        time_budget_s: float | None = None,
        **fields: Any,
    ) -> Job:
        """Submit a TrainerRun (validated locally against the shared schema first);
        ``time_budget_s``: the wall-clock seconds the whole job may take (None: no limit)."""
        if time_budget_s is not None:
            fields["time_budget_s"] = time_budget_s
        if hasattr(task, "model_dump"):
            task = task.model_dump(mode="json")
        request = TrainerRunRequest.model_validate(
            {"dataset_id": str(dataset_id), "task": task, **fields}
        )
        body = request.model_dump(mode="json", exclude_none=True)
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        response = self.request("POST", "/v1/trainer/run", json=body, headers=headers)
        return Job(self, str(response.json()["job_id"]))

    def job(self, job_id: str | uuid.UUID) -> Job:
        """A handle on an existing job (404 -> ApiError)."""
        job = Job(self, str(job_id))
        job.refresh()
        return job

    def jobs(self, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The caller's jobs, newest first (first page)."""
        return list(self.get_json("/v1/jobs", status=status, limit=limit)["items"])

    # -- models ------------------------------------------------------------------------------

    def model(self, model_id: str | uuid.UUID) -> Model:
        """A registered model."""
        return Model(self, self.get_json(f"/v1/models/{model_id}"))

    def models(self, limit: int = 50) -> list[dict[str, Any]]:
        """The caller's models (first page)."""
        return list(self.get_json("/v1/models", limit=limit)["items"])


class Job:
    """A submitted job. ``info`` is the last fetched state (GET /v1/jobs/{id})."""

    def __init__(self, client: Client, job_id: str) -> None:
        self.client, self.id = client, job_id
        self.info: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"Job({self.id!r}, status={self.info.get('status')!r})"

    def refresh(self) -> dict[str, Any]:
        """Fetch the job's current state."""
        self.info = dict(self.client.get_json(f"/v1/jobs/{self.id}"))
        return self.info

    @property
    def status(self) -> str:
        """The current status (fetched)."""
        return str(self.refresh()["status"])

    def history(self) -> list[dict[str, Any]]:
        """Every event of the job so far (envelopes, in order)."""
        return list(self.client.get_json(f"/v1/jobs/{self.id}/events")["events"])

    def events(self, after: int = 0, deadline: float | None = None) -> Iterator[dict[str, Any]]:
        """Envelopes live over SSE after index ``after``; ends after the terminal event (or
        quietly at the ``time.monotonic()`` ``deadline``)."""
        headers = {"Accept": "text/event-stream", "Last-Event-ID": str(after)}
        with self.client.http.stream(
            "GET", f"/v1/jobs/{self.id}/events", headers=headers, timeout=_SSE_TIMEOUT
        ) as response:
            if response.status_code >= 400:
                response.read()
                raise ApiError(response.status_code, detail_of(response))
            for event in parse_sse(_until(response.iter_lines(), deadline)):
                yield event.data
                if event.data.get("type") in TERMINAL_EVENTS:
                    return

    def wait(self, timeout: float | None = None, poll: float = 2.0) -> Job:
        """Block until the job ends (SSE; polling if the stream fails). Raises ``JobFailed``
        when it failed or was cancelled, ``TimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with contextlib.suppress(httpx.HTTPError, ValueError):
            self._wait_sse(deadline)
        while self.refresh()["status"] not in TERMINAL_STATUSES:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {self.id} still {self.info['status']} after {timeout} s")
            time.sleep(poll)
        self._raise_if_failed()
        return self

    def _wait_sse(self, deadline: float | None) -> None:
        for _ in self.events(deadline=deadline):
            pass

    def _raise_if_failed(self) -> None:
        status = self.info["status"]
        if status == "completed":
            return
        error = self.info.get("error")
        if isinstance(error, dict):
            error = f"{error.get('reason')}: {error.get('message')}"
        reason = error or self.info.get("cancel_reason") or status
        raise JobFailed(self.id, status, str(reason))

    def result(self) -> JobResultResponse:
        """The outcome: leaderboard, best model, ensemble, Pareto front, or the error (a job
        still running has only its status: the API answers 202)."""
        response = self.client.request("GET", f"/v1/results/{self.id}")
        body = response.json()
        if response.status_code == 202:
            return JobResultResponse(job_id=body["job_id"], status=body["status"])
        return JobResultResponse.model_validate(body)

    def cancel(self) -> dict[str, Any]:
        """Request cancellation (409 ApiError when the job already ended)."""
        return dict(self.client.request("POST", f"/v1/jobs/{self.id}/cancel").json())

    def best_model(self) -> Model:
        """The job's best model (after completion)."""
        model_id = self.info.get("best_model_id") or self.refresh().get("best_model_id")
        if not model_id:
            raise ValueError(f"job {self.id} has no best model (status {self.info['status']})")
        return self.client.model(model_id)


def _dataset_info(data: dict[str, Any]) -> DatasetInfo:
    """A DatasetInfo from a dataset response (fields this SDK does not know are ignored, so
    a newer server may add some)."""
    return DatasetInfo.model_validate({k: v for k, v in data.items() if k in DATASET_FIELDS})


DATASET_FIELDS = frozenset(DatasetInfo.model_fields)


def _until(lines: Iterator[str], deadline: float | None) -> Iterator[str]:
    """``lines`` until the deadline passes (checked on every line, heartbeats included)."""
    for line in lines:
        if deadline is not None and time.monotonic() >= deadline:
            return
        yield line
