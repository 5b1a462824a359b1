"""The reference client's whole flow against a running deployment, with its checks."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tests.reference.client import ReferenceClient

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
LABEL = "creditability"


def credit_g(rows: int) -> pa.Table:
    """The first ``rows`` rows of credit_g."""
    return pq.read_table(DATA / "credit_g.parquet").slice(0, rows)


def csv_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pacsv.write_csv(table, sink)
    return sink.getvalue()


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def run_reference_flow(client: ReferenceClient) -> None:
    """upload -> PUT -> dataset -> trainer/run -> results -> predict job -> download, and the
    synchronous predict with shuffled feature_names agreeing with the batch job."""
    train = credit_g(200)
    dataset_id = client.create_dataset(client.upload(csv_bytes(train), "csv"))
    dataset = client.get_dataset(dataset_id)
    assert dataset["id"] == dataset_id and dataset["connection_config"]["connector_type"]
    assert {c["name"] for c in dataset["columns"]} == set(train.column_names)
    assert dataset["created_at"] and dataset["updated_at"]

    job_id = client.trainer_run(_run_body(dataset_id))
    result = client.wait_result(job_id)
    assert result["status"] == "completed", result
    data = result["result_data"]
    model_id = data["model_id"]
    assert model_id and data["winner_uris"] and result["result_uri"].endswith("result.json")

    features = [n for n in train.column_names if n != LABEL]
    scored = credit_g(260).slice(200)
    upload = client.upload(parquet_bytes(scored), "parquet")
    dataset_spec = {"columns": [{"name": n} for n in features], "connection_config": upload}
    predicted = client.wait_result(client.predict_job(model_id, dataset_spec))
    assert predicted["status"] == "completed", predicted
    out = client.download(predicted["result_data"]["presigned_url"])
    assert out.num_rows == scored.num_rows
    _agrees_with_sync_predict(client, model_id, scored, features, out)


def _run_body(dataset_id: str) -> dict[str, Any]:
    return {
        "dataset_id": dataset_id,
        "task": {"task_kind": "binclass", "label_column": LABEL},
        "model_types": ["xgboost"],
        "metrics": ["auc"],
        "strategy": "optuna",
        "n_trials": 2,
        "n_splits": None,
        "ensemble": False,
        "random_state": 42,
    }


def _agrees_with_sync_predict(
    client: ReferenceClient, model_id: str, scored: pa.Table, features: list[str], out: pa.Table
) -> None:
    names = features[::-1]  # any order
    rows = scored.select(names).slice(0, 10).to_pylist()
    body = {"samples": [list(r.values()) for r in rows], "feature_names": names}
    response = client.http.post(f"/v1/models/{model_id}/predict", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == out.column("prediction").to_pylist()[:10]
