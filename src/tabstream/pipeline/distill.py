"""Distillation: a teacher labels synthetic rows; students train on real plus synthetic rows.

How it plugs into the search (``run`` calls ``augment`` when the request names a teacher):

- For every split, ``synth.synthesize`` draws synthetic rows from that split's *training* rows
  only; they join that split's training indices and never a validation fold, so every score
  (true-label metrics, fidelity) is on held-out real rows.
- Real rows keep their true labels. Synthetic rows get the teacher's: the value
  (regression); for classification a label drawn from the teacher's probabilities
  (``labels="sample"``, the default: an unbiased Monte-Carlo estimate of the soft-target loss
  that every family can train on) or its argmax (``labels="argmax"``, hard labels).
- The teacher also labels the real rows once; ``fidelity`` compares out-of-fold student
  predictions with them: ``fidelity_agreement`` (same argmax) or ``fidelity_r2`` (R^2 to the
  teacher's values). ``run`` adds it to the rows' best metrics (leaderboard, ModelRegistered).

Synthetic rows per split: ``TABSTREAM_DISTILL_SYNTHETIC_ROWS`` when set, else
``TABSTREAM_DISTILL_RATIO`` (default 1.0) x the training rows, clipped to
[``MIN_SYNTHETIC``, ``MAX_SYNTHETIC``].
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tabstream.pipeline.predict import Teacher, TeacherOutput
from tabstream.pipeline.synth import synthesize
from tabstream.pipeline.types import ProblemSpec

MIN_SYNTHETIC, MAX_SYNTHETIC = 500, 50_000
CHUNK = 20_000
Split = tuple[np.ndarray, np.ndarray]


class TeacherFailed(ValueError):
    """The teacher could not label the samples (the message never carries its response)."""


@dataclass(frozen=True)
class DistillConfig:
    """How many synthetic rows, how to label them."""

    synthetic_rows: int | None = None
    ratio: float = 1.0
    labels: Literal["sample", "argmax"] = "sample"
    marginal_fraction: float = 0.2

    @classmethod
    def from_env(cls) -> DistillConfig:
        """From ``TABSTREAM_DISTILL_SYNTHETIC_ROWS``, ``_RATIO`` and ``_LABELS``."""
        rows = os.environ.get("TABSTREAM_DISTILL_SYNTHETIC_ROWS")
        labels = os.environ.get("TABSTREAM_DISTILL_LABELS", "sample")
        if labels not in ("sample", "argmax"):
            raise ValueError("TABSTREAM_DISTILL_LABELS must be 'sample' or 'argmax'")
        return cls(
            synthetic_rows=int(rows) if rows else None,
            ratio=float(os.environ.get("TABSTREAM_DISTILL_RATIO", "1.0")),
            labels=labels,  # type: ignore[arg-type]
        )

    def n_synthetic(self, n_train: int) -> int:
        """Synthetic rows for a training set of ``n_train`` rows."""
        if self.synthetic_rows is not None:
            return max(0, self.synthetic_rows)
        return int(np.clip(round(self.ratio * n_train), MIN_SYNTHETIC, MAX_SYNTHETIC))


@dataclass(frozen=True)
class Augmented:
    """Real + synthetic training data, the splits over it, and the teacher on real rows."""

    features: pa.Table
    y: np.ndarray
    splits: list[Split]
    teacher_real: np.ndarray
    notes: list[str] = field(default_factory=list)


def augment(
    features: pa.Table,
    y: np.ndarray,
    spec: ProblemSpec,
    splits: list[Split],
    teacher: Teacher,
    config: DistillConfig,
    seed: int,
) -> Augmented:
    """Synthesize per split, label with ``teacher``, and extend the splits' training rows."""
    rng = np.random.default_rng(seed)
    teacher_real = label(teacher, features, spec)
    tables, labels, new_splits = [features], [y], []
    offset = features.num_rows
    for tr, va in splits:
        m = config.n_synthetic(len(tr))
        syn = synthesize(
            features.take(pa.array(tr)), y[tr], spec, m, rng,
            marginal_fraction=config.marginal_fraction,
        )  # fmt: skip
        tables.append(syn)
        labels.append(_targets(label(teacher, syn, spec), spec, config, rng))
        new_splits.append((np.concatenate([tr, offset + np.arange(syn.num_rows)]), va))
        offset += syn.num_rows
    total = offset - features.num_rows
    note = (
        f"distillation: {total} synthetic rows over {len(splits)} split(s), "
        f"teacher labels ({config.labels if spec.is_classification else 'values'})"
    )
    table = pa.concat_tables(tables).combine_chunks()
    return Augmented(table, np.concatenate(labels), new_splits, teacher_real, [note])


def _targets(
    raw: np.ndarray, spec: ProblemSpec, config: DistillConfig, rng: np.random.Generator
) -> np.ndarray:
    if not spec.is_classification:
        return np.asarray(raw, dtype=np.float64)
    if len(raw) == 0:
        return np.zeros(0, np.int64)
    if config.labels == "argmax":
        return np.asarray(np.argmax(raw, axis=1), dtype=np.int64)
    cum = np.cumsum(raw, axis=1)
    draws = rng.random(len(raw))[:, None] * cum[:, -1:]
    return np.asarray(np.minimum((draws > cum).sum(axis=1), raw.shape[1] - 1), dtype=np.int64)


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


def fidelity(spec: ProblemSpec, student: np.ndarray, teacher: np.ndarray) -> dict[str, float]:
    """Agreement (classification) or R^2 (regression) of student to teacher predictions."""
    if len(teacher) == 0:
        return {}
    if spec.is_classification:
        agree = np.argmax(student, axis=1) == np.argmax(teacher, axis=1)
        return {"fidelity_agreement": float(np.mean(agree))}
    sst = float(np.sum((teacher - teacher.mean()) ** 2))
    sse = float(np.sum((student - teacher) ** 2))
    return {"fidelity_r2": 1.0 - sse / sst if sst > 0 else float(sse == 0)}
