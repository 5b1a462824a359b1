"""Inference shared by the API and the worker: verified loading, a memory-bounded LRU, and
predictions in the teacher protocol.

Teacher protocol (``POST /v1/models/{id}/predict`` and external teachers alike)::

    request  {"samples": [[cell, ...], ...], "feature_names": [name, ...]}
    response {"predictions": [...], "probabilities": [[...], ...] | null, "classes": [...] | null}

Cells are numbers, strings, booleans or null. ``feature_names`` may come in any order and may
name extra columns (ignored); a feature the model needs and the body lacks is a
``SampleError`` naming it. Cells are read as the model's recorded input types (ISO strings for
timestamps and dates).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from tabstream.pipeline.finish.bundle import (
    MANIFEST,
    BundleIntegrityError,
    LoadedModel,
    load_bundle,
    sha256,
)
from tabstream.pipeline.options import FamilyOptions
from tabstream.pipeline.types import Artifacts, TeacherOutput

__all__ = [
    "BundleIntegrityError",
    "InProcessTeacher",
    "ModelCache",
    "SampleError",
    "predict_samples",
    "samples_table",
]

MEMORY_FACTOR = 3  # in-memory size of a loaded bundle relative to its stored bytes (estimate)


class SampleError(ValueError):
    """A predict body the model cannot read (missing features, bad cells); names the field."""


def samples_table(
    samples: Sequence[Sequence[Any]], names: Sequence[str], features: Sequence[tuple[str, str]]
) -> pa.Table:
    """An Arrow table of the model's input ``features`` built from protocol ``samples``."""
    if len(set(names)) != len(names):
        raise SampleError("feature_names has duplicates")
    missing = [n for n, _ in features if n not in names]
    if missing:
        raise SampleError(f"feature_names lacks the model's features {missing}")
    width = len(names)
    for i, row in enumerate(samples):
        if len(row) != width:
            raise SampleError(f"samples[{i}] has {len(row)} cells; feature_names has {width}")
    index = {n: i for i, n in enumerate(names)}
    columns = {n: _column([row[index[n]] for row in samples], n, t) for n, t in features}
    return pa.table(columns)


def _column(values: list[Any], name: str, type_str: str) -> pa.Array:
    t = type_str.lower()
    try:
        if t.startswith(("int", "uint", "float", "double", "halffloat", "decimal")):
            return pa.array([_number(v) for v in values], pa.float64())
        if t == "bool":
            return pa.array([_boolean(v) for v in values], pa.bool_())
        if t.startswith(("timestamp", "date")):
            strings = [None if v is None else str(v) for v in values]
            return pa.array(strings, pa.string()).cast(_temporal(t))
        return pa.array([None if v is None else _text(v) for v in values], pa.string())
    except (TypeError, ValueError, pa.ArrowInvalid) as exc:
        raise SampleError(f"feature {name!r} ({type_str}): {exc}") from None


def _number(v: Any) -> float | None:
    if v is None or isinstance(v, bool | int | float):
        return None if v is None else float(v)
    if isinstance(v, str):
        return float(v) if v.strip() else None
    raise TypeError(f"cannot read {type(v).__name__} as a number")


def _boolean(v: Any) -> bool | None:
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int | float) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    raise ValueError(f"cannot read {v!r} as a boolean")


def _text(v: Any) -> str:
    if isinstance(v, bool | int | float | str):
        return str(v)
    raise TypeError(f"cannot read {type(v).__name__} as a string")


def _temporal(t: str) -> pa.DataType:
    if t.startswith("date"):
        return pa.date32()
    unit = t[t.find("[") + 1 : t.find("]")].split(",")[0].strip() if "[" in t else "us"
    return pa.timestamp(unit if unit in ("s", "ms", "us", "ns") else "us")


def predict_samples(
    model: LoadedModel, samples: Sequence[Sequence[Any]], names: Sequence[str]
) -> TeacherOutput:
    """The teacher-protocol response of ``model`` for ``samples``."""
    table = samples_table(samples, names, model.features)
    if table.num_rows == 0:
        return _output(model, np.zeros((0, max(model.spec.n_classes, 0))))
    return _output(model, model.predict_raw(table))


def _output(model: LoadedModel, raw: np.ndarray) -> TeacherOutput:
    classes = model.spec.classes
    if classes is None:
        return {"predictions": _floats(raw.reshape(-1)), "probabilities": None, "classes": None}
    labels = [_jsonable(classes[i]) for i in np.argmax(raw, axis=1)] if len(raw) else []
    probs = [_floats(row) for row in raw]
    return {
        "predictions": labels,
        "probabilities": probs,
        "classes": [_jsonable(c) for c in classes],
    }


def _floats(values: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in values]


def _jsonable(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


class _Counting:
    """Artifacts proxy that counts the bytes read (to size a loaded bundle)."""

    def __init__(self, inner: Artifacts) -> None:
        self.inner, self.n_bytes = inner, 0

    def get_bytes(self, key: str) -> bytes:
        data = self.inner.get_bytes(key)
        self.n_bytes += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass(frozen=True)
class _Entry:
    model: LoadedModel
    size: int


class ModelCache:
    """Verified models kept in an LRU bounded by estimated memory (``max_bytes``).

    ``get`` loads through the artifact store and checks the recorded sha256
    (``BundleIntegrityError`` on mismatch; failures are never cached). A model larger than the
    whole budget is served but not kept. Thread-safe; one load per key at a time. Models load
    with the operator's family ``options`` (threads, TabICL checkpoints).
    """

    def __init__(
        self,
        artifacts: Artifacts,
        max_bytes: int = 512 * 1024 * 1024,
        options: FamilyOptions | None = None,
    ) -> None:
        self.artifacts, self.max_bytes, self.options = artifacts, max_bytes, options
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, str], threading.Lock] = {}
        self.used = 0

    def get(self, model_id: str, sha256: str) -> LoadedModel:
        """The verified model ``model_id`` whose manifest digest is ``sha256``."""
        key = (model_id, sha256)
        hit = self._hit(key)
        if hit is not None:
            return hit
        with self._lock:
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:
            hit = self._hit(key)
            if hit is not None:
                return hit
            counting = _Counting(self.artifacts)
            model = load_bundle(counting, model_id, sha256, self.options)
            self._put(key, _Entry(model, counting.n_bytes * MEMORY_FACTOR))
        with self._lock:
            self._loading.pop(key, None)
        return model

    def __contains__(self, model_id: str) -> bool:
        with self._lock:
            return any(k[0] == model_id for k in self._entries)

    def _hit(self, key: tuple[str, str]) -> LoadedModel | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry.model

    def _put(self, key: tuple[str, str], entry: _Entry) -> None:
        if entry.size > self.max_bytes:
            return
        with self._lock:
            self._entries[key] = entry
            self.used += entry.size
            while self.used > self.max_bytes:
                _, old = self._entries.popitem(last=False)
                self.used -= old.size


class InProcessTeacher:
    """A registered model as a ``types.Teacher`` (the worker's ``teacher_model_id``, no HTTP)."""

    def __init__(self, model: LoadedModel) -> None:
        self.model = model

    @property
    def features(self) -> list[tuple[str, str]]:
        """The teacher's input features."""
        return list(self.model.features)

    def predict(self, samples: list[list[Any]], feature_names: list[str]) -> TeacherOutput:
        """Predict in-process through the same code as the predict API."""
        return predict_samples(self.model, samples, feature_names)


def registered_sha256(artifacts: Artifacts, model_id: str) -> str:
    """The digest of the stored manifest of ``model_id``, for callers without the log's record
    (the worker's child); ``load_bundle`` still verifies every file against the manifest."""
    return sha256(artifacts.get_bytes(f"models/{model_id}/{MANIFEST}"))
