"""The pipeline's side of the lenient rules and of ``time_budget_s``: grid_size with one metric
sweeps nothing, the filter compiler ignores a null op's value, and the worker's child passes the
request's time budget to ``run()``."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import pyarrow as pa
import pytest

from tabstream.consumer.attempt import run_spec
from tabstream.consumer.config import trials_total
from tabstream.pipeline import train
from tabstream.pipeline.tasks.filter_compile import apply_filter
from tabstream.schemas import Comparison
from tests.unit.pipeline_support import of_type, request, run_collect, store_with


@pytest.mark.parametrize("metrics", [["auc"], None], ids=["one", "default"])
def test_grid_size_with_one_metric_runs_no_sweep(tmp_path: Path, metrics: Any) -> None:
    store, ref = store_with(tmp_path, "credit_g", 150)
    req = request("credit_g", metrics=metrics, grid_size=0.5, n_trials=1, n_splits=2)
    result, events = run_collect(store, ref, req)
    (row,) = of_type(events, "RowCompleted")
    assert row.weights is None and len(of_type(events, "TrialCompleted")) == 1
    assert result.pareto_front is None and result.metrics == ["auc"]
    assert len(of_type(events, "ModelRegistered")) == 1
    assert result.leaderboard[0].weights is None


def test_trials_total_counts_no_weight_vectors_for_one_metric() -> None:
    one = request("credit_g", metrics=["auc"], grid_size=0.25, n_trials=3)
    assert trials_total(one) == 3
    two = request("credit_g", metrics=["auc", "logloss"], grid_size=0.25, n_trials=3)
    assert trials_total(two) == 3 * 5


@pytest.mark.parametrize("op", ["is_null", "is_not_null"])
def test_the_filter_compiler_ignores_a_null_ops_value(op: Any) -> None:
    table = pa.table({"x": [1.0, None, 3.0, None]})
    bare = apply_filter(table, Comparison(col="x", op=op))
    smuggled = Comparison.model_construct(kind="cmp", col="x", op=op, value="not a number")
    assert apply_filter(table, smuggled).equals(bare)
    assert apply_filter(table, Comparison(col="x", op=op, value=7)).equals(bare)


@pytest.mark.parametrize("budget", [None, 45.0])
def test_the_child_passes_the_requests_time_budget_to_run(
    monkeypatch: pytest.MonkeyPatch, budget: float | None
) -> None:
    seen: dict[str, Any] = {}

    def fake_run(*args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        raise train.Cancelled()

    monkeypatch.setattr(train, "run", fake_run)
    req = request("credit_g", **({"time_budget_s": budget} if budget else {}))
    spec = SimpleNamespace(
        request=req.model_dump(mode="json"),
        dataset_id=str(uuid4()),
        dataset_key="datasets/x.parquet",
        device="cpu",
        job_id=str(uuid4()),
        announced_trials=None,
    )
    out = io.BytesIO()
    run_spec(spec, out, lambda: False, None, lambda _: None)  # type: ignore[arg-type]
    assert seen["time_budget_s"] == budget
    assert b"cancel" in out.getvalue()
