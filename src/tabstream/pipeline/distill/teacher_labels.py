"""The teacher's labels: samples sent in the teacher protocol (``types.Teacher``), responses
checked and mapped onto the student's classes. A failing teacher is a ``TeacherFailed`` whose
message never carries its response."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tabstream.pipeline.types import ProblemSpec, Teacher, TeacherOutput

CHUNK = 20_000
"""Rows per teacher request."""


class TeacherFailed(ValueError):
    """The teacher could not label the samples (the message never carries its response)."""


def label(teacher: Teacher, table: pa.Table, spec: ProblemSpec) -> np.ndarray:
    """The teacher's raw predictions for ``table``: (n, K) probabilities or (n,) values."""
    names = list(table.column_names)
    parts = []
    for start in range(0, max(table.num_rows, 1), CHUNK):
        chunk = table.slice(start, CHUNK)
        if chunk.num_rows == 0:
            break
        try:
            out = teacher.predict(to_samples(chunk), names)
        except TeacherFailed:
            raise
        except Exception as exc:
            raise TeacherFailed(f"teacher failed: {exc}") from exc
        parts.append(teacher_matrix(out, spec, chunk.num_rows))
    if not parts:
        return np.zeros((0, spec.n_classes)) if spec.is_classification else np.zeros(0)
    return np.concatenate(parts)


def to_samples(table: pa.Table) -> list[list[Any]]:
    """Rows of JSON-safe cells (temporal values as ISO text, NaN as null)."""
    columns = [_cells(table.column(n)) for n in table.column_names]
    return [list(row) for row in zip(*columns, strict=True)] if columns else []


def _cells(col: pa.ChunkedArray) -> list[Any]:
    typ = col.type.value_type if pa.types.is_dictionary(col.type) else col.type
    if pa.types.is_dictionary(col.type):
        col = col.cast(typ)
    if pa.types.is_timestamp(typ) or pa.types.is_date(typ):
        return list(pc.cast(col, pa.string()).to_pylist())
    if pa.types.is_decimal(typ) or pa.types.is_floating(typ):
        values = pc.cast(col, pa.float64()).to_pylist()
        return [v if v is None or np.isfinite(v) else None for v in values]
    return list(col.to_pylist())


def teacher_matrix(out: TeacherOutput, spec: ProblemSpec, n: int) -> np.ndarray:
    """Validate a teacher response and map it onto the student's classes."""
    if not isinstance(out, dict) or not isinstance(out.get("predictions"), list):
        raise TeacherFailed("teacher response lacks a predictions list")
    if len(out["predictions"]) != n:
        raise TeacherFailed(f"teacher returned {len(out['predictions'])} predictions for {n} rows")
    if not spec.is_classification:
        try:
            return np.asarray(out["predictions"], dtype=np.float64)
        except (TypeError, ValueError):
            raise TeacherFailed("teacher predictions are not numbers") from None
    return _class_matrix(out, spec, n)


def _class_matrix(out: TeacherOutput, spec: ProblemSpec, n: int) -> np.ndarray:
    assert spec.classes is not None
    ours = {_key(c): i for i, c in enumerate(spec.classes)}
    probs, classes = out.get("probabilities"), out.get("classes")
    matrix = np.zeros((n, len(ours)), dtype=np.float64)
    if probs is not None and isinstance(classes, list):
        arr = np.asarray(probs, dtype=np.float64)
        if arr.shape != (n, len(classes)):
            raise TeacherFailed("teacher probabilities do not match its classes")
        for j, c in enumerate(classes):
            if _key(c) in ours:
                matrix[:, ours[_key(c)]] += np.nan_to_num(arr[:, j])
    else:
        for i, p in enumerate(out["predictions"]):
            if _key(p) in ours:
                matrix[i, ours[_key(p)]] = 1.0
    sums = matrix.sum(axis=1, keepdims=True)
    if not np.all(sums > 0):
        raise TeacherFailed(f"teacher classes do not match the label's classes {list(ours)}")
    result: np.ndarray = matrix / sums
    return result


def _key(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)
