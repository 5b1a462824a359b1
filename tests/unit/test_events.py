"""Events: envelope, codec round trips, upcasting, redaction, published JSON Schemas."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tabstream.schemas import (
    CURRENT_VERSIONS,
    EVENT_TYPES,
    TERMINAL_TYPES,
    CancelRequested,
    ColumnInfo,
    Comparison,
    DatasetRegistered,
    Envelope,
    EventPayload,
    JobCancelled,
    JobCompleted,
    JobFailed,
    JobInterrupted,
    JobStarted,
    LeaderboardEntry,
    ModelRegistered,
    PredictionsWritten,
    PredictRequested,
    Producer,
    RegressionTask,
    RowCompleted,
    RunRequested,
    TrainerRunRequest,
    TrialCompleted,
    UndecodableEvent,
    UploadCompleted,
    UploadCreated,
    decode,
    encode,
    headers,
    json_schemas,
)
from tabstream.schemas.connections import FileUploadConnectionConfig, ResolvedSource
from tabstream.schemas.export import schema_files
from tabstream.schemas.results import EnsembleInfo, EnsembleMember, Feature, ParetoPoint
from tabstream.schemas.upcasters import UPCASTERS, upcast, upcaster

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events"
PRODUCER = Producer(service="worker", instance="w-1")
JOB, DS, MODEL = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SHA = "ab" * 32
UPLOAD = uuid.uuid4()
SOURCE = ResolvedSource(
    connection_config=FileUploadConnectionConfig(id=UPLOAD),
    upload_key=f"uploads/{UPLOAD}/a.csv",
    file_format="csv",
    columns=["a"],
    filter=Comparison(col="a", op="ge", value=1),
)


def request(**kw: Any) -> TrainerRunRequest:
    body = {"dataset_id": str(DS), "task": {"label_column": "y", "task_kind": "regression"}}
    return TrainerRunRequest.model_validate(body | kw)


def samples() -> list[EventPayload]:
    """One instance of every event type."""
    secret = request(teacher_predict_url="https://t.example/p", teacher_predict_headers={"K": "v"})
    metrics = {"rmse": 0.5}
    return [
        DatasetRegistered(
            dataset_id=DS,
            name="d",
            rows=3,
            columns=[ColumnInfo(name="a", type="int64", nulls=0)],
            sha256=SHA,
            uri="file:///d.parquet",
            created_at=NOW,
        ),
        RunRequested(
            job_id=JOB,
            dataset_id=DS,
            request=secret.redacted(),
            encrypted_headers="gAAA...",
            pool="cpu",
            submitted_at=NOW,
            idempotency_key="k",
            request_digest="d" * 64,
        ),
        CancelRequested(job_id=JOB, reason="user"),
        JobStarted(
            job_id=JOB,
            attempt=1,
            worker="w-1",
            device="cuda:0",
            pool="gpu",
            model_types=["xgboost"],
            default_models_chosen=True,
            trials_total=4,
        ),
        TrialCompleted(
            job_id=JOB,
            row=0,
            family="xgboost",
            trial=1,
            state="complete",
            params={"eta": 0.1},
            fold_metrics=[metrics, metrics],
            metrics=metrics,
            score=0.5,
            fit_seconds=1.0,
            predict_seconds=0.1,
            device="cpu",
        ),
        RowCompleted(
            job_id=JOB,
            row=0,
            family="xgboost",
            weights=[0.5, 0.5],
            best_trial=1,
            best_params={"eta": 0.1},
            best_metrics=metrics,
            score=0.5,
            n_trials=4,
            n_failed=1,
        ),
        ModelRegistered(
            model_id=MODEL,
            job_id=JOB,
            kind="single",
            families=["xgboost"],
            uri="file:///m",
            sha256=SHA,
            task=RegressionTask(label_column="y"),
            metrics=metrics,
            features=[Feature(name="a", type="int64")],
            classes=None,
            created_at=NOW,
        ),
        JobCompleted(
            job_id=JOB,
            duration_s=3.5,
            best_model_id=MODEL,
            result_uri="file:///r.json",
            leaderboard=[LeaderboardEntry(row=0, family="xgboost", metrics=metrics, params={})],
            ensemble=EnsembleInfo(
                members=[EnsembleMember(row=0, family="xgboost", trial=1, weight=1.0)],
                metrics=metrics,
            ),
            pareto_front=[ParetoPoint(row=0, family="xgboost", weights=[1, 0], metrics=metrics)],
            notes=["defaults chosen"],
        ),
        JobFailed(job_id=JOB, error="boom", reason="training_error", attempt=1),
        JobCancelled(job_id=JOB, reason=None),
        JobInterrupted(job_id=JOB, lost_attempt=1, reason="rebalance"),
        UploadCreated(upload_id=UPLOAD, file_format="csv", expires_at=NOW, created_at=NOW),
        UploadCompleted(
            upload_id=UPLOAD,
            key=f"uploads/{UPLOAD}/a.csv",
            size_bytes=10,
            sha256=SHA,
            completed_at=NOW,
        ),
        PredictRequested(
            job_id=JOB,
            model_id=MODEL,
            model_sha256=SHA,
            source=SOURCE,
            pool="cpu",
            submitted_at=NOW,
        ),
        PredictionsWritten(job_id=JOB, model_id=MODEL, uri="file:///p", rows=3, sha256=SHA),
    ]


def wrap(payload: EventPayload, **kw: Any) -> Envelope:
    return Envelope.wrap(payload, tenant="acme", producer=PRODUCER, **kw)


def test_samples_cover_every_type() -> None:
    assert {p.type for p in samples()} == set(EVENT_TYPES)
    assert {"JobCompleted", "JobFailed", "JobCancelled"} == TERMINAL_TYPES


@pytest.mark.parametrize("payload", samples(), ids=lambda p: p.type)
def test_roundtrip_every_type(payload: EventPayload) -> None:
    env = wrap(payload, attempt=1, seq=3)
    raw = encode(env)
    assert decode(raw) == env
    assert b" " not in raw.split(b'"payload"')[0]
    assert dict(headers(env)) == {
        "type": payload.type.encode(),
        "schema_version": str(type(payload).SCHEMA_VERSION).encode(),
        "tenant": b"acme",
    }


def test_aggregate_ids() -> None:
    by_type = {p.type: wrap(p).aggregate_id for p in samples()}
    assert by_type["DatasetRegistered"] == str(DS)
    assert by_type["ModelRegistered"] == str(JOB)
    assert by_type["JobFailed"] == str(JOB)
    assert wrap(samples()[0], aggregate_id="x").aggregate_id == "x"


def test_occurred_at_is_utc() -> None:
    env = wrap(samples()[2])
    assert env.occurred_at.tzinfo is not None and env.occurred_at.utcoffset() == timedelta(0)
    later = env.model_copy(update={"occurred_at": None})
    data = later.model_dump(mode="json") | {
        "occurred_at": datetime(2024, 1, 1, 3, tzinfo=timezone(timedelta(hours=3))).isoformat()
    }
    assert Envelope.model_validate(data).occurred_at == datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(ValidationError):
        Envelope.model_validate(data | {"occurred_at": "2024-01-01T00:00:00"})


def test_envelope_type_must_match_payload() -> None:
    data = wrap(samples()[2]).model_dump(mode="json")
    with pytest.raises(ValidationError, match=r"payload\.type"):
        Envelope.model_validate(data | {"type": "JobFailed"})
    with pytest.raises(ValidationError, match="schema_version"):
        Envelope.model_validate(data | {"schema_version": 2})


def raw_env() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        encode(wrap(JobFailed(job_id=JOB, error="e", reason="crashed", attempt=1)))
    )
    return data


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"not json", "not UTF-8 JSON"),
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps(raw_env() | {"type": "JobExploded"}).encode(), "unknown event type"),
        (json.dumps(raw_env() | {"schema_version": 2}).encode(), "newer than supported"),
        (json.dumps(raw_env() | {"schema_version": "1"}).encode(), "must be an integer"),
        (json.dumps(raw_env() | {"schema_version": 0}).encode(), "no upcaster"),
        (json.dumps(raw_env() | {"payload": {"type": "JobFailed"}}).encode(), "invalid JobFailed"),
    ],
)
def test_undecodable(raw: bytes, needle: str) -> None:
    with pytest.raises(UndecodableEvent, match=needle):
        decode(raw)


def test_undecodable_is_value_error() -> None:
    assert issubclass(UndecodableEvent, ValueError)


@pytest.fixture
def v0_jobfailed() -> Iterator[None]:
    """A synthetic v0 JobFailed (no `reason`) upcast to v1 with reason=training_error."""

    @upcaster("JobFailed", 0)
    def _v0_v1(payload: dict[str, Any]) -> dict[str, Any]:
        return payload | {"reason": "training_error"}

    yield
    del UPCASTERS[("JobFailed", 0)]


def v0_record() -> dict[str, Any]:
    data = raw_env()
    del data["payload"]["reason"]
    return data | {"schema_version": 0}


def test_upcast_v0_to_v1(v0_jobfailed: None) -> None:
    env = decode(json.dumps(v0_record()).encode())
    assert env.schema_version == 1 and isinstance(env.payload, JobFailed)
    assert env.payload.reason == "training_error"
    assert upcast(v0_record())["payload"]["reason"] == "training_error"


def test_upcast_without_upcaster_is_undecodable() -> None:
    with pytest.raises(UndecodableEvent, match="no upcaster for JobFailed v0"):
        decode(json.dumps(v0_record()).encode())


def test_upcaster_registered_twice(v0_jobfailed: None) -> None:
    with pytest.raises(ValueError, match="already registered"):
        upcaster("JobFailed", 0)(lambda p: p)


def test_production_upcasters_lead_to_current_versions() -> None:
    """Every registered upcaster starts below its type's current version (no dead ones)."""
    assert ("RunRequested", 1) in UPCASTERS
    assert all(v < CURRENT_VERSIONS[t] for t, v in UPCASTERS)


def test_run_requested_refuses_plaintext_headers() -> None:
    secret = request(teacher_predict_url="https://t.example/p", teacher_predict_headers={"K": "v"})
    base = {"job_id": JOB, "dataset_id": DS, "pool": "cpu", "submitted_at": NOW}
    base |= {"request_digest": "d", "encrypted_headers": "c"}
    with pytest.raises(ValidationError, match="must be redacted"):
        RunRequested.model_validate(base | {"request": secret})
    with pytest.raises(ValidationError, match="encrypted_headers"):
        RunRequested.model_validate(
            base | {"request": secret.redacted(), "encrypted_headers": None}
        )
    assert RunRequested.model_validate(base | {"request": secret.redacted()})


def test_run_requested_bad_pool() -> None:
    with pytest.raises(ValidationError, match="pool"):
        RunRequested(
            job_id=JOB,
            dataset_id=DS,
            request=request(),
            pool="GPU!",
            submitted_at=NOW,
            request_digest="d",
        )


def test_events_are_frozen_and_strict() -> None:
    ev = JobCancelled(job_id=JOB)
    with pytest.raises(ValidationError):
        ev.reason = "x"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        JobCancelled.model_validate({"job_id": str(JOB), "surprise": 1})
    with pytest.raises(ValidationError):
        JobFailed.model_validate({"job_id": JOB, "error": "e", "reason": "oops", "attempt": 1})


def test_non_finite_metrics_rejected() -> None:
    with pytest.raises(ValidationError):
        RowCompleted(
            job_id=JOB,
            row=0,
            family="x",
            best_params={},
            best_metrics={"rmse": float("nan")},
            n_trials=1,
            n_failed=0,
        )


def test_json_schemas_deterministic_and_complete() -> None:
    schemas = json_schemas()
    assert set(schemas) == set(EVENT_TYPES) | {"Envelope"}
    assert json.dumps(schemas, sort_keys=True) == json.dumps(json_schemas(), sort_keys=True)


def test_committed_schema_files_are_current() -> None:
    expected = schema_files()
    committed = {p.name: p.read_text(encoding="utf-8") for p in DOCS.glob("*.json")}
    assert committed == expected, "run: python -m tabstream.schemas.export docs/events"


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
names = st.text(min_size=1, max_size=12)
metric_dicts = st.dictionaries(names, finite, max_size=4)
json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | finite | st.text()
aware = st.datetimes(timezones=st.just(UTC))
counts = st.integers(0, 10_000)


trials = st.builds(
    TrialCompleted,
    job_id=st.uuids(),
    row=counts,
    family=names,
    weights=st.none() | st.lists(finite, max_size=3),
    trial=counts,
    state=st.sampled_from(["complete", "failed"]),
    params=st.dictionaries(names, json_scalars, max_size=4),
    fold_metrics=st.lists(metric_dicts, max_size=3),
    metrics=metric_dicts,
    score=st.none() | finite,
    fit_seconds=st.floats(0, 1e6),
    predict_seconds=st.floats(0, 1e6),
    device=names,
    error=st.none() | st.text(),
)
failures = st.builds(
    JobFailed,
    job_id=st.uuids(),
    error=st.text(),
    attempt=counts,
    reason=st.sampled_from(["invalid_input", "training_error", "crashed", "poison"]),
)
starts = st.builds(
    JobStarted,
    job_id=st.uuids(),
    attempt=st.integers(1, 100),
    worker=names,
    device=names,
    pool=st.from_regex(r"[a-z0-9][a-z0-9-]{0,31}", fullmatch=True),
    model_types=st.lists(names, max_size=4),
    default_models_chosen=st.booleans(),
    trials_total=counts,
)
models = st.builds(
    ModelRegistered,
    model_id=st.uuids(),
    job_id=st.uuids(),
    kind=st.sampled_from(["single", "ensemble"]),
    families=st.lists(names, max_size=3),
    uri=st.text(),
    sha256=st.just(SHA),
    task=st.just(RegressionTask(label_column="y")),
    metrics=metric_dicts,
    features=st.lists(st.builds(Feature, name=names, type=names)),
    classes=st.none() | st.lists(st.booleans() | st.integers(-1000, 1000) | st.text()),
    created_at=aware,
)


@settings(max_examples=150, deadline=None)
@given(
    payload=trials | failures | starts | models,
    tenant=names,
    attempt=counts,
    seq=counts,
    at=aware,
)
def test_roundtrip_property(
    payload: EventPayload, tenant: str, attempt: int, seq: int, at: datetime
) -> None:
    env = Envelope.wrap(payload, tenant=tenant, producer=PRODUCER, attempt=attempt, seq=seq)
    env = env.model_copy(update={"occurred_at": at})
    assert decode(encode(env)) == env


def test_a_v1_dataset_registered_upcasts_to_v2_without_a_source() -> None:
    payload = {
        "type": "DatasetRegistered",
        "dataset_id": str(DS),
        "name": "d",
        "rows": 1,
        "columns": [{"name": "a", "type": "int64", "nulls": 0}],
        "sha256": SHA,
        "uri": "file:///d",
        "created_at": NOW.isoformat(),
    }
    raw = wrap(DatasetRegistered.model_validate(payload)).model_dump(mode="json")
    raw["schema_version"] = 1
    env = decode(json.dumps(raw).encode())
    assert env.schema_version == 2 and env.payload.source is None  # type: ignore[union-attr]
    with_source = DatasetRegistered.model_validate({**payload, "source": SOURCE})
    assert decode(encode(wrap(with_source))).payload == with_source
