"""TrainerRunRequest: seed conformance, defaults, and one rejection test per constraint."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from tabstream.schemas import (
    Comparison,
    TrainerRunRequest,
    TrainerRunResponse,
    filter_columns,
    is_classification,
    task_columns,
)
from tabstream.schemas.run import JobResultResponse

DS = "3c90c3cc-0d44-4b50-8888-8dd25736052a"


def seed_body() -> dict[str, Any]:
    """The seed's example body with valid values, minus the exclusive teacher fields."""
    return {
        "dataset_id": DS,
        "filter": {"col": "<string>", "kind": "cmp", "value": "<string>"},
        "task": {"label_column": "<string>", "task_kind": "regression"},
        "model_types": ["xgboost"],
        "metrics": ["rmse", "mae"],
        "strategy": "optuna",
        "n_trials": 4,
        "n_splits": 5,
        "ensemble": False,
        "grid_size": 0.5,
        "teacher_predict_url": "https://teacher.example.com/predict",
        "teacher_predict_headers": {},
        "random_state": 42,
    }


def minimal(**extra: Any) -> dict[str, Any]:
    return {"dataset_id": DS, "task": {"label_column": "y", "task_kind": "regression"}, **extra}


def rejects(body: dict[str, Any], *needles: str) -> str:
    with pytest.raises(ValidationError) as info:
        TrainerRunRequest.model_validate(body)
    text = str(info.value)
    for needle in needles:
        assert needle in text, text
    return text


def test_seed_body_with_url_validates() -> None:
    req = TrainerRunRequest.model_validate(seed_body())
    assert req.filter == Comparison(col="<string>", value="<string>")
    assert req.filter is not None and req.filter.op == "eq"


def test_seed_body_with_teacher_model_validates() -> None:
    body = seed_body()
    del body["teacher_predict_url"], body["teacher_predict_headers"]
    body["teacher_model_id"] = str(uuid.uuid4())
    assert TrainerRunRequest.model_validate(body).teacher_model_id is not None


def test_seed_json_roundtrip() -> None:
    req = TrainerRunRequest.model_validate(seed_body())
    assert TrainerRunRequest.model_validate_json(req.model_dump_json()) == req


def test_defaults_match_seed() -> None:
    req = TrainerRunRequest.model_validate(minimal())
    assert (req.strategy, req.n_trials, req.ensemble, req.random_state) == ("optuna", 4, False, 42)
    assert req.filter is None and req.n_splits is None and req.grid_size is None


def test_missing_dataset_id() -> None:
    body = minimal()
    del body["dataset_id"]
    rejects(body, "dataset_id")


def test_missing_task() -> None:
    body = minimal()
    del body["task"]
    rejects(body, "task")


def test_bad_uuid() -> None:
    rejects(minimal(dataset_id="not-a-uuid"), "dataset_id")


@pytest.mark.parametrize("n", [0, -1, 1001])
def test_n_trials_bounds(n: int) -> None:
    rejects(minimal(n_trials=n), "n_trials")


@pytest.mark.parametrize("n", [1, 21])
def test_n_splits_bounds(n: int) -> None:
    rejects(minimal(n_splits=n), "n_splits")


@pytest.mark.parametrize("g", [0, 1.5, 0.3, -0.5])
def test_grid_size_rejected(g: float) -> None:
    rejects(minimal(metrics=["rmse", "mae"], grid_size=g), "grid_size")


@pytest.mark.parametrize("g", [1.0, 0.5, 0.25, 0.1, 0.05])
def test_grid_size_accepted(g: float) -> None:
    assert TrainerRunRequest.model_validate(minimal(metrics=["rmse", "r2"], grid_size=g))


def test_grid_size_with_one_metric_is_accepted() -> None:
    """Lenient like the reference: only multi-metric requests sweep when grid_size is set."""
    for body in (minimal(metrics=["rmse"], grid_size=0.5), minimal(grid_size=0.5)):
        assert TrainerRunRequest.model_validate(body).grid_size == 0.5


@pytest.mark.parametrize("t", [0, -1, 7 * 86400 + 1, "soon"])
def test_time_budget_rejected(t: Any) -> None:
    rejects(minimal(time_budget_s=t), "time_budget_s")


@pytest.mark.parametrize("t", [0.5, 60, 7 * 86400])
def test_time_budget_accepted(t: float) -> None:
    assert TrainerRunRequest.model_validate(minimal(time_budget_s=t)).time_budget_s == t
    assert TrainerRunRequest.model_validate(minimal()).time_budget_s is None


def test_both_teachers_rejected() -> None:
    body = minimal(teacher_model_id=str(uuid.uuid4()), teacher_predict_url="https://t.example/p")
    rejects(body, "teacher_model_id", "teacher_predict_url")


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://host/x", "https://", "not a url", "http://u:p@host/x"],
)
def test_bad_teacher_url(url: str) -> None:
    rejects(minimal(teacher_predict_url=url), "teacher_predict_url")


def test_headers_without_url() -> None:
    rejects(minimal(teacher_predict_headers={"X-Key": "v"}), "requires teacher_predict_url")


@pytest.mark.parametrize(
    "headers",
    [{"bad name": "v"}, {"X-Key": "a\r\nInjected: 1"}, {f"h{i}": "v" for i in range(33)}],
)
def test_bad_headers(headers: dict[str, str]) -> None:
    rejects(minimal(teacher_predict_url="https://t.example/p", teacher_predict_headers=headers))


def test_unknown_model_type_lists_valid() -> None:
    rejects(minimal(model_types=["knn"]), "knn", "tabm", "xgboost", "lightgbm", "randomforest")


@pytest.mark.parametrize("types", [[], ["xgboost", "xgboost"]])
def test_model_types_empty_or_duplicate(types: list[str]) -> None:
    rejects(minimal(model_types=types), "model_types")


def test_unknown_metric() -> None:
    rejects(minimal(metrics=["mape"]), "mape", "rmse")


def test_metric_must_fit_task() -> None:
    rejects(minimal(metrics=["auc"]), "'auc'", "'regression'")
    bin_task = {"label_column": "y", "task_kind": "binclass"}
    rejects(minimal(task=bin_task, metrics=["rmse"]), "'rmse'", "'binclass'")
    rejects(minimal(metrics=["mase"]), "'mase'", "'regression'")


def test_forecasting_metrics_ok() -> None:
    task: dict[str, Any] = {"task_kind": "forecasting", "label_column": "y", "id_column": "id"}
    task |= {"timestamp_column": "ts", "horizon": 3}
    req = TrainerRunRequest.model_validate(minimal(task=task, metrics=["mase", "smape", "rmse"]))
    assert task_columns(req.task) == ["y", "id", "ts"]
    assert not is_classification(req.task)


def test_unknown_top_level_field() -> None:
    rejects(minimal(learning_rate=0.1), "learning_rate")


def test_unknown_task_kind() -> None:
    rejects(minimal(task={"label_column": "y", "task_kind": "ranking"}), "task")


def test_empty_label_column() -> None:
    rejects(minimal(task={"label_column": "", "task_kind": "binclass"}), "label_column")


def test_forecasting_needs_horizon() -> None:
    task = {"task_kind": "forecasting", "label_column": "y", "id_column": "i"}
    rejects(minimal(task=task | {"timestamp_column": "t"}), "horizon")
    rejects(minimal(task=task | {"timestamp_column": "t", "horizon": 0}), "horizon")


def test_sequence_task_distinct_columns() -> None:
    task = {"task_kind": "sequence_binclass", "label_column": "y", "id_column": "y"}
    rejects(minimal(task=task | {"timestamp_column": "t"}), "distinct")


def test_classification_helper() -> None:
    task = {"task_kind": "sequence_multiclass", "label_column": "y", "id_column": "i"}
    req = TrainerRunRequest.model_validate(minimal(task=task | {"timestamp_column": "t"}))
    assert is_classification(req.task)


def test_strategy_enum() -> None:
    rejects(minimal(strategy="grid"), "strategy")


def test_repr_hides_header_values() -> None:
    req = TrainerRunRequest.model_validate(
        minimal(
            teacher_predict_url="https://t.example/p", teacher_predict_headers={"X-K": "s3cr3t"}
        )
    )
    for text in (repr(req), str(req), f"{req}", repr(req.redacted())):
        assert "s3cr3t" not in text and "***" in text
    assert req.redacted().teacher_predict_headers == {"X-K": "***"}
    assert req.teacher_predict_headers == {"X-K": "s3cr3t"}


def test_validation_error_hides_header_values() -> None:
    body = minimal(teacher_predict_headers={"X-K": "s3cr3t"})
    assert "s3cr3t" not in rejects(body)


def test_responses() -> None:
    job = uuid.uuid4()
    resp = TrainerRunResponse(job_id=job, status="pending", message="queued", dataset_id=DS)
    assert resp.model_dump(mode="json")["status"] == "pending"
    with pytest.raises(ValidationError):
        TrainerRunResponse.model_validate(resp.model_dump() | {"status": "queued"})
    res = JobResultResponse(job_id=job, status="cancelled")
    assert res.result_data is None and res.completed_at is None


def test_filter_columns_of_request() -> None:
    flt = {
        "kind": "bool",
        "op": "and",
        "args": [
            {"kind": "cmp", "col": "a", "op": "gt", "value": 1},
            {"kind": "not", "arg": {"kind": "cmp", "col": "b", "op": "is_null"}},
        ],
    }
    req = TrainerRunRequest.model_validate(minimal(filter=flt))
    assert req.filter is not None and filter_columns(req.filter) == {"a", "b"}
