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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tabstream.client.io_helpers import (
    TERMINAL_EVENTS,
    TERMINAL_STATUSES,
    error_message,
    parse_sse,
    read_table,
    table_bytes,
    to_samples,
)
from tabstream.schemas import DatasetInfo, JobResultResponse, TrainerRunRequest
from tabstream.settings import ClientSettings

DEFAULT_URL = "http://127.0.0.1:8000"
RETRY_STATUSES = frozenset({502, 503, 504})
PREDICT_BATCH = 5000
_SSE_TIMEOUT = httpx.Timeout(10.0, read=60.0)


class ApiError(Exception):
    """The server answered with an error status (``status``, ``detail``) or was unreachable
    (``status`` 0)."""

    def __init__(self, status: int, detail: Any, message: str | None = None) -> None:
        self.status, self.detail = status, detail
        super().__init__(message or error_message(status, detail))


class JobFailed(Exception):
    """A job ended failed or cancelled; ``message`` is the server's."""

    def __init__(self, job_id: str, status: str, message: str) -> None:
        self.job_id, self.status, self.message = job_id, status, message
        super().__init__(f"job {job_id} {status}: {message}")


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
                raise ApiError(response.status_code, _detail(response))
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
        return DatasetInfo.model_validate(response.json())

    def datasets(self, limit: int = 50) -> list[DatasetInfo]:
        """The caller's datasets (first page)."""
        page = self.get_json("/v1/datasets", limit=limit)
        return [DatasetInfo.model_validate(d) for d in page["items"]]

    def dataset(self, dataset_id: str | uuid.UUID) -> DatasetInfo:
        """One dataset."""
        return DatasetInfo.model_validate(self.get_json(f"/v1/datasets/{dataset_id}"))

    # -- runs and jobs -----------------------------------------------------------------------

    def run(
        self,
        dataset_id: str | uuid.UUID,
        task: dict[str, Any] | Any,
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> Job:
        """Submit a TrainerRun (validated locally against the shared schema first)."""
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
                raise ApiError(response.status_code, _detail(response))
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
        """The outcome: leaderboard, best model, ensemble, Pareto front, or the error."""
        return JobResultResponse.model_validate(self.client.get_json(f"/v1/results/{self.id}"))

    def cancel(self) -> dict[str, Any]:
        """Request cancellation (409 ApiError when the job already ended)."""
        return dict(self.client.request("POST", f"/v1/jobs/{self.id}/cancel").json())

    def best_model(self) -> Model:
        """The job's best model (after completion)."""
        model_id = self.info.get("best_model_id") or self.refresh().get("best_model_id")
        if not model_id:
            raise ValueError(f"job {self.id} has no best model (status {self.info['status']})")
        return self.client.model(model_id)


@dataclass
class Predictions:
    """Model output: labels or values, and class probabilities for classification."""

    predictions: list[Any]
    probabilities: list[list[float | None]] | None = None
    classes: list[Any] | None = None

    def to_frame(self) -> Any:
        """A pandas DataFrame: ``prediction`` plus one ``proba_<class>`` column per class."""
        import pandas as pd

        frame = pd.DataFrame({"prediction": self.predictions})
        if self.probabilities is not None and self.classes is not None:
            for i, label in enumerate(self.classes):
                frame[f"proba_{label}"] = [row[i] for row in self.probabilities]
        return frame


class Model:
    """A registered model; ``info`` is GET /v1/models/{id}."""

    def __init__(self, client: Client, info: dict[str, Any]) -> None:
        self.client, self.info = client, info
        self.id = str(info["model_id"])

    @property
    def feature_names(self) -> list[str]:
        """The model's input columns."""
        return [f["name"] for f in self.info.get("features", [])]

    def predict(self, data: Any) -> Predictions:
        """Predict a DataFrame, pyarrow Table or CSV/Parquet path (extra columns ignored)."""
        frame = _frame(data)
        names = [n for n in self.feature_names if n in frame.columns] or list(frame.columns)
        out = Predictions([], None, None)
        for start in range(0, max(len(frame), 1), PREDICT_BATCH):
            chunk = frame.iloc[start : start + PREDICT_BATCH]
            body = {"samples": to_samples(chunk, names), "feature_names": names}
            got = self.client.request("POST", f"/v1/models/{self.id}/predict", json=body).json()
            out.predictions += got["predictions"]
            out.classes = got.get("classes")
            if got.get("probabilities") is not None:
                out.probabilities = (out.probabilities or []) + got["probabilities"]
        return out


def _until(lines: Iterator[str], deadline: float | None) -> Iterator[str]:
    """``lines`` until the deadline passes (checked on every line, heartbeats included)."""
    for line in lines:
        if deadline is not None and time.monotonic() >= deadline:
            return
        yield line


def _frame(data: Any) -> Any:
    if isinstance(data, str | Path):
        return read_table(data)
    if hasattr(data, "to_pandas"):
        return data.to_pandas()
    return data


def _detail(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    return body.get("detail", body) if isinstance(body, dict) else body
