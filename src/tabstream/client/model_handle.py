"""A registered model in the SDK: synchronous predictions (the teacher protocol) and
batch-scoring jobs over a whole dataset (the reference API)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from tabstream.client.api_errors import ApiError, detail_of
from tabstream.client.io_helpers import read_table, to_samples


class ApiClient(Protocol):
    """What a model handle uses of ``tabstream.client.Client``."""

    http: httpx.Client

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request (retried; ApiError on >= 400)."""
        ...

    def get_json(self, path: str, **params: Any) -> Any:
        """GET and decode JSON."""
        ...

    def upload(self, data: Any) -> dict[str, Any]:
        """Upload a file; the completed upload's connection_config."""
        ...

    def job(self, job_id: str) -> Any:
        """A handle on a job (``wait(timeout=)``)."""
        ...


PREDICT_BATCH = 5000


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

    def __init__(self, client: ApiClient, info: dict[str, Any]) -> None:
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

    def predict_dataset(
        self,
        data: str | Path | dict[str, Any] | Any,
        *,
        columns: list[str] | None = None,
        filter: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Score a whole dataset as a job (the reference API's batch predict): ``data`` is a
        path, DataFrame or Table (uploaded first) or a ``connection_config`` dict; waits for
        the job and returns its Parquet predictions as a DataFrame (``prediction`` and, for
        classification, one ``proba_<class>`` column per class)."""
        import pandas as pd

        config = data if isinstance(data, dict) else self.client.upload(data)
        dataset = {"connection_config": config, "columns": columns_spec(columns), "filter": filter}
        body = {"dataset": {k: v for k, v in dataset.items() if v is not None}}
        path = f"/v1/models/{self.id}/predict"
        job_id = self.client.request("POST", path, json=body).json()["job_id"]
        self.client.job(str(job_id)).wait(timeout=timeout)
        result = self.client.get_json(f"/v1/results/{job_id}")
        download = self.client.http.get(result["result_data"]["presigned_url"])
        if download.status_code >= 400:
            raise ApiError(download.status_code, detail_of(download))
        return pd.read_parquet(io.BytesIO(download.content))


def columns_spec(names: list[str] | None) -> list[dict[str, str]] | None:
    """The reference API's ``columns`` ([{name}]) of column names."""
    return None if names is None else [{"name": n} for n in names]


def _frame(data: Any) -> Any:
    if isinstance(data, str | Path):
        return read_table(data)
    if hasattr(data, "to_pandas"):
        return data.to_pandas()
    return data
