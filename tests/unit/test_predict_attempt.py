"""Prediction jobs in the worker's child: a dataset streamed from an upload (CSV or Parquet),
selected and filtered, scored batch by batch, written as Parquet, equal to the predict
endpoint's answers for the same rows; and the result.json every completed job stores."""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from tabstream.adapters.artifacts.local import LocalArtifactStore
from tabstream.consumer import predict_attempt
from tabstream.consumer.attempt import run_spec
from tabstream.consumer.protocol import JobSpec, parse_line
from tabstream.pipeline.batch_predict import BatchInputError, BatchScorer
from tabstream.pipeline.finish.bundle import load_bundle
from tabstream.pipeline.predict import predict_samples
from tabstream.schemas.connections import (
    FileUploadConnectionConfig,
    ResolvedSource,
    S3ConnectionConfig,
)
from tabstream.schemas.events import ModelRegistered, PredictRequested
from tests.unit.pipeline_support import (
    DATA,
    ONE_THREAD,
    of_type,
    request,
    run_collect,
    store_with,
)

Trained = tuple[LocalArtifactStore, ModelRegistered, pa.Table]


def _train(tmp: Path, name: str) -> Trained:
    """A model trained on the first 200 rows; the next 200 rows (label kept) to score."""
    store, ref = store_with(tmp, name, 200)
    _, events = run_collect(store, ref, request(name, n_trials=1, n_splits=None))
    (model,) = of_type(events, "ModelRegistered")
    return store, model, pq.read_table(DATA / f"{name}.parquet").slice(200, 200)


@pytest.fixture(scope="module")
def binclass(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return _train(tmp_path_factory.mktemp("binclass"), "credit_g")


@pytest.fixture(scope="module")
def regression(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return _train(tmp_path_factory.mktemp("regression"), "abalone")


def _upload(store: LocalArtifactStore, table: pa.Table, fmt: str) -> str:
    buf = io.BytesIO()
    if fmt == "csv":
        pacsv.write_csv(table, buf)
    else:
        pq.write_table(table, buf)
    key = f"uploads/{uuid.uuid4()}/data"
    store.put_bytes(key, buf.getvalue())
    return key


def _command(model: ModelRegistered, upload_key: str | None, **source: Any) -> PredictRequested:
    source.setdefault("connection_config", FileUploadConnectionConfig(id=uuid.uuid4()))
    return PredictRequested(
        job_id=uuid.uuid4(),
        model_id=model.model_id,
        model_sha256=model.sha256,
        source=ResolvedSource(upload_key=upload_key, **source),
        pool="cpu",
        submitted_at=datetime.now(UTC),
    )


def _run(store: LocalArtifactStore, spec: JobSpec, stop: bool = False, s3: Any = None) -> list[Any]:
    out = io.BytesIO()
    run_spec(spec, out, lambda: stop, store, lambda _: None, ONE_THREAD, s3)  # type: ignore[arg-type]
    return [parse_line(line) for line in out.getvalue().splitlines()]


def _predict(
    store: LocalArtifactStore, cmd: PredictRequested, stop: bool = False, s3: Any = None
) -> list[Any]:
    spec = JobSpec(str(cmd.job_id), 1, "", cmd.source.upload_key or "",
                   cmd.model_dump(mode="json"), "cpu", store.root_uri, kind="predict")  # fmt: skip
    return _run(store, spec, stop, s3)


def _expected(store: LocalArtifactStore, model: ModelRegistered, rows: pa.Table) -> Any:
    loaded = load_bundle(store, str(model.model_id), model.sha256)
    names = rows.column_names
    return predict_samples(loaded, [[r[n] for n in names] for r in rows.to_pylist()], names)


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(predict_attempt, "BATCH_ROWS", 37)
    monkeypatch.setattr(predict_attempt, "CSV_BLOCK_BYTES", 4096)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.usefixtures("small_batches")
def test_scores_an_upload_in_batches_like_the_predict_endpoint(binclass: Trained, fmt: str) -> None:
    store, model, unseen = binclass
    features = [f.name for f in model.features]
    extra = unseen.append_column("note", pa.array(["x"] * unseen.num_rows))
    older = {"kind": "cmp", "col": "age_in_years", "op": "gt", "value": 30}
    cmd = _command(model, _upload(store, extra, fmt), columns=features, filter=older)
    lines = _predict(store, cmd)
    assert [line.kind for line in lines] == ["event", "result"], lines
    written, result = lines
    kept = unseen.filter(pc.greater(unseen["age_in_years"], 30))
    key = f"predictions/{cmd.job_id}/predictions.parquet"
    out = pq.ParquetFile(store.local_path(key))
    assert out.metadata.num_row_groups > 1  # streamed, not read whole
    table = out.read()
    expected = _expected(store, model, kept)
    classes = expected["classes"]
    assert table.column_names == ["prediction", *(f"proba_{c}" for c in classes)]
    assert table["prediction"].to_pylist() == expected["predictions"]
    probas = np.column_stack([table[f"proba_{c}"].to_numpy() for c in classes])
    np.testing.assert_allclose(probas, np.asarray(expected["probabilities"]), rtol=0, atol=1e-9)
    assert written.payload.rows == kept.num_rows < unseen.num_rows
    assert written.payload.uri == store.uri(key)
    assert written.payload.sha256 == predict_attempt.stored_sha256(store, key)
    completed = result.payload
    assert completed.best_model_id == model.model_id and completed.leaderboard == []
    filtered = unseen.num_rows - kept.num_rows
    assert completed.notes == [f"scored {kept.num_rows} rows ({filtered} filtered out)"]
    stored = json.loads(store.get_bytes(f"jobs/{cmd.job_id}/result.json"))
    assert completed.result_uri == store.uri(f"jobs/{cmd.job_id}/result.json")
    assert stored["status"] == "completed" and stored["job_id"] == str(cmd.job_id)
    data = {"model_id": str(model.model_id), "result_uri": store.uri(key), "rows": kept.num_rows}
    assert stored["result_data"] == data


def test_reads_an_s3_source_with_the_operator_filesystem(binclass: Trained, tmp_path: Path) -> None:
    store, model, unseen = binclass
    (tmp_path / "bucket").mkdir()
    pacsv.write_csv(unseen, str(tmp_path / "bucket" / "in.csv"))
    cmd = _command(model, None, connection_config=S3ConnectionConfig(uri="s3://bucket/in.csv"))
    assert _fails(store, cmd).error == "this worker has no S3 settings to read s3 sources with"
    buckets = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    written, _ = _predict(store, cmd, s3=lambda: buckets)
    table = store.read_parquet(predict_attempt.predictions_key(cmd.job_id))
    assert written.payload.rows == unseen.num_rows == table.num_rows
    assert table["prediction"].to_pylist() == _expected(store, model, unseen)["predictions"]
    missing = _command(model, None, connection_config=S3ConnectionConfig(uri="s3://bucket/no"))
    line = _fails(store, missing, s3=lambda: buckets)
    assert line.reason == "invalid_input" and "cannot read s3://bucket/no" in line.error


def test_series_models_are_refused_row_wise_scoring(binclass: Trained) -> None:
    store, model, _ = binclass
    loaded = load_bundle(store, str(model.model_id), model.sha256)
    with pytest.raises(BatchInputError, match="forecasting and sequence models cannot be batch"):
        BatchScorer(replace(loaded, recipe={"kind": "forecast"}))


def test_regression_scores_values_and_may_filter_on_a_column_it_does_not_keep(
    regression: Trained,
) -> None:
    store, model, unseen = regression
    features = [f.name for f in model.features]
    assert "rings" not in features  # the label: the filter may name it, ``columns`` does not
    ringed = {"kind": "cmp", "col": "rings", "op": "ge", "value": 10}
    key = _upload(store, unseen, "parquet")
    cmd = _command(model, key, file_format="parquet", columns=features, filter=ringed)
    _, result = _predict(store, cmd)
    table = store.read_parquet(f"predictions/{cmd.job_id}/predictions.parquet")
    kept = unseen.filter(pc.greater_equal(unseen["rings"], 10)).drop_columns(["rings"])
    assert table.column_names == ["prediction"] and 0 < table.num_rows == kept.num_rows
    expected = _expected(store, model, kept)["predictions"]
    assert table["prediction"].to_pylist() == pytest.approx(expected, rel=1e-12)
    assert result.payload.notes[0].startswith(f"scored {kept.num_rows} rows")


def _fails(
    store: LocalArtifactStore, cmd: PredictRequested, stop: bool = False, s3: Any = None
) -> Any:
    """The one outcome line of a job that must leave neither predictions nor a result.json."""
    (line,) = _predict(store, cmd, stop, s3)
    assert not store.exists(predict_attempt.predictions_key(cmd.job_id))
    assert not store.exists(f"jobs/{cmd.job_id}/result.json")
    return line


def test_missing_features_fail_with_invalid_input_naming_them(binclass: Trained) -> None:
    store, model, unseen = binclass
    key = _upload(store, unseen.drop_columns(["age_in_years", "job"]), "csv")
    line = _fails(store, _command(model, key))
    assert line.kind == "error" and line.reason == "invalid_input"
    assert "lacks the model's features ['age_in_years', 'job']" in line.error
    features = [f.name for f in model.features if f.name != "purpose"]
    line = _fails(store, _command(model, _upload(store, unseen, "csv"), columns=features))
    assert line.reason == "invalid_input" and "['purpose']" in line.error
    line = _fails(store, _command(model, key, columns=["nope"]))
    assert line.reason == "invalid_input" and "columns ['nope'] are not in the source" in line.error


def test_bad_inputs_fail_cleanly_and_leave_no_output(binclass: Trained) -> None:
    store, model, unseen = binclass
    key = _upload(store, unseen, "parquet")
    line = _fails(
        store, _command(model, key, filter={"kind": "cmp", "col": "ghost", "op": "is_null"})
    )
    assert line.reason == "invalid_input" and "['ghost']" in line.error
    wrong_type = {"kind": "cmp", "col": "job", "op": "gt", "value": 3}
    line = _fails(store, _command(model, key, filter=wrong_type))
    assert line.reason == "invalid_input" and "'job'" in line.error
    line = _fails(store, _command(model, "uploads/missing/data"))
    assert line.reason == "invalid_input" and "has no stored bytes" in line.error
    line = _fails(store, _command(model, key).model_copy(update={"model_sha256": "0" * 64}))
    assert line.reason == "invalid_input" and "sha256" in line.error
    store.put_bytes("uploads/garbage/data", b"PAR1 not really parquet")
    line = _fails(store, _command(model, "uploads/garbage/data"))
    assert line.reason == "invalid_input" and "cannot read the source as parquet" in line.error
    assert _fails(store, _command(model, key), stop=True).kind == "cancelled"


def test_a_trainer_run_stores_result_json_naming_the_winner(tmp_path: Path) -> None:
    store, ref = store_with(tmp_path, "credit_g", 150)
    job_id = uuid.uuid4()
    for ensemble in (False, True):
        req = request("credit_g", n_trials=2, n_splits=2, ensemble=ensemble)
        spec = JobSpec(str(job_id), 1, str(ref.dataset_id), ref.key,
                       req.model_dump(mode="json"), "cpu", store.root_uri)  # fmt: skip
        lines = _run(store, spec)
        completed = lines[-1].payload
        assert lines[-1].kind == "result", lines[-1].error
        events = [x.payload for x in lines if x.kind == "event"]
        models = [m for m in events if m.type == "ModelRegistered"]
        winner = models[-1] if ensemble else next(m for m in models if m.kind == "single")
        assert winner.kind == ("ensemble" if ensemble else "single")
        assert completed.best_model_id == winner.model_id
        if not ensemble:
            assert completed.leaderboard[0].model_id == winner.model_id
        key = f"jobs/{job_id}/result.json"
        assert completed.result_uri == store.uri(key)
        body = json.loads(store.get_bytes(key))
        data = body["result_data"]
        assert body["status"] == "completed" and data["model_id"] == str(winner.model_id)
        uris = [store.uri(k) for k in store.keys(f"models/{winner.model_id}")]
        assert (
            data["winner_uris"] == uris
            and store.uri(f"models/{winner.model_id}/manifest.json") in uris
        )
        assert data["leaderboard"] == completed.model_dump(mode="json")["leaderboard"]
        assert (data["ensemble"] is not None) == ensemble and data["pareto_front"] is None
