"""Synthetic rows, teacher labels, fidelity, and a distillation run from teacher_model_id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from tabstream.bootstrap.child import build_teacher
from tabstream.pipeline.distill.augment import _targets, fidelity
from tabstream.pipeline.distill.synth import synthesize
from tabstream.pipeline.distill.teacher_labels import TeacherFailed, teacher_matrix, to_samples
from tabstream.pipeline.options import DistillOptions, FamilyOptions, PipelineOptions
from tabstream.pipeline.train import PipelineInputError
from tabstream.pipeline.types import ProblemSpec
from tests.unit.pipeline_support import of_type, request, run_collect, store_with

BIN = ProblemSpec("binclass", "y", ("bad", "good"))
SMALL = PipelineOptions(FamilyOptions(threads=2), DistillOptions(synthetic_rows=150))


def _table() -> tuple[pa.Table, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 60
    table = pa.table({
        "num": pa.array(rng.normal(size=n)),
        "int": pa.array(rng.integers(0, 9, n), pa.int32()),
        "cat": pa.array(rng.choice(["a", "b", "c"], n)).dictionary_encode(),
        "flag": pa.array(rng.random(n) > 0.5),
        "ts": pa.array(np.arange(n).astype("datetime64[s]")).cast(pa.timestamp("s")),
        "gap": pa.array([None if i % 3 == 0 else float(i) for i in range(n)]),
    })  # fmt: skip
    return table, rng.integers(0, 2, n)


def test_synthetic_rows_respect_types_levels_and_ranges() -> None:
    table, y = _table()
    syn = synthesize(table, y, BIN, 400, np.random.default_rng(1))
    assert syn.num_rows == 400 and syn.schema == table.schema
    assert set(syn.column("cat").to_pylist()) <= {"a", "b", "c"}
    ints = syn.column("int").to_numpy()
    assert ints.min() >= 0 and ints.max() <= 8
    num = syn.column("num").to_numpy()
    assert num.min() >= table.column("num").to_numpy().min() - 1e-9
    assert 0 < syn.column("gap").null_count < 400
    assert set(syn.column("ts").to_pylist()) <= set(table.column("ts").to_pylist())


def test_labels_sampled_from_probabilities_or_argmax() -> None:
    raw = np.tile([[0.2, 0.8]], (5000, 1))
    rng = np.random.default_rng(0)
    sampled = _targets(raw, BIN, DistillOptions(), rng)
    assert abs(sampled.mean() - 0.8) < 0.03
    assert set(_targets(raw, BIN, DistillOptions(labels="argmax"), rng)) == {1}


def test_teacher_matrix_maps_classes_by_value() -> None:
    spec = ProblemSpec("multiclass", "y", (1, 2, 3))
    out = {"predictions": [3, 1], "classes": [3.0, 1.0, 2.0],
           "probabilities": [[0.7, 0.1, 0.2], [0.0, 1.0, 0.0]]}  # fmt: skip
    np.testing.assert_allclose(teacher_matrix(out, spec, 2), [[0.1, 0.2, 0.7], [1.0, 0.0, 0.0]])
    hard = {"predictions": ["good", "bad"], "probabilities": None, "classes": None}
    np.testing.assert_allclose(teacher_matrix(hard, BIN, 2), [[0, 1], [1, 0]])
    with pytest.raises(TeacherFailed, match="classes"):
        teacher_matrix({"predictions": ["x"], "probabilities": None}, BIN, 1)
    with pytest.raises(TeacherFailed, match="2 rows"):
        teacher_matrix({"predictions": ["bad"]}, BIN, 2)


def test_fidelity_and_samples() -> None:
    teacher = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    student = np.array([[0.6, 0.4], [0.3, 0.7], [0.1, 0.9]])
    assert fidelity(BIN, student, teacher) == {"fidelity_agreement": pytest.approx(2 / 3)}
    reg = ProblemSpec("regression", "y")
    assert fidelity(reg, np.array([1.0, 2.0]), np.array([1.0, 2.0])) == {"fidelity_r2": 1.0}
    table, _ = _table()
    row = to_samples(table.slice(1, 1))[0]
    assert isinstance(row[4], str) and row[2] in ("a", "b", "c")
    assert (
        DistillOptions().n_synthetic(100) == 500 and DistillOptions().n_synthetic(10**6) == 50_000
    )


@pytest.mark.parametrize("name", ["credit_g", "abalone"])
def test_distillation_run_from_teacher_model_id(tmp_path: Path, name: str) -> None:
    store, ref = store_with(tmp_path, name, 240)
    _, events = run_collect(store, ref, request(name, n_trials=1), options=SMALL)
    (teacher_model,) = of_type(events, "ModelRegistered")
    req = request(name, n_trials=1, teacher_model_id=str(teacher_model.model_id))
    teacher = build_teacher(req, store, options=SMALL.families)
    assert teacher is not None
    result, student_events = run_collect(store, ref, req, teacher=teacher, options=SMALL)
    key = "fidelity_agreement" if name == "credit_g" else "fidelity_r2"
    metrics = result.leaderboard[0].metrics
    assert key in metrics and metrics[key] > 0.3
    (student,) = of_type(student_events, "ModelRegistered")
    assert key in student.metrics
    assert any("300 synthetic rows over 2 split(s)" in n for n in result.notes) or any(
        "450 synthetic rows over 3 split(s)" in n for n in result.notes
    )


def test_teacher_with_missing_features_fails_clearly(tmp_path: Path) -> None:
    store, ref = store_with(tmp_path, "abalone", 120)
    _, events = run_collect(store, ref, request("abalone", n_trials=1), options=SMALL)
    (teacher_model,) = of_type(events, "ModelRegistered")
    req = request("abalone", n_trials=1, teacher_model_id=str(teacher_model.model_id))
    teacher = build_teacher(req, store, options=SMALL.families)
    narrow = store.read_parquet(ref.key).drop_columns(["sex"])
    store.write_parquet("datasets/narrow.parquet", narrow)
    ref2 = type(ref)(ref.dataset_id, "datasets/narrow.parquet")
    with pytest.raises(PipelineInputError, match="sex"):
        run_collect(store, ref2, req, teacher=teacher, options=SMALL)


def test_missing_teacher_model_is_a_clear_error(tmp_path: Path) -> None:
    store, _ = store_with(tmp_path, "abalone", 10)
    req: Any = request("abalone", teacher_model_id="00000000-0000-0000-0000-000000000001")
    with pytest.raises(ValueError, match="not in the artifact store"):
        build_teacher(req, store, options=SMALL.families)
