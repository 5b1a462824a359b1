"""Shared pipeline types: how data, predictions, families and fitted models meet, and the ports
the pipeline is handed (``Artifacts``, ``Teacher``, ``Emit``).

Conventions
- Labels are encoded: classification -> int64 codes 0..K-1 in the order of ``ProblemSpec.classes``;
  regression -> float64.
- A model's *raw prediction* is ``np.ndarray``: shape (n, K) class probabilities for
  classification (K = 2 for binclass as well), shape (n,) values for regression. Metrics,
  ensembles and distillation all work on raw predictions.
- Features reach a family already preprocessed (``FeatureMatrix``), by the preprocessing kind the
  family asks for; preprocessing is fitted inside each fold only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import optuna
import pyarrow as pa

TaskKind = Literal["regression", "binclass", "multiclass"]
PreprocessingKind = Literal["tree", "nn"]
Device = str  # "cpu" or "cuda" (the child process sees only its pinned GPU as cuda:0)
Split = tuple[np.ndarray, np.ndarray]
"""(training row indices, validation row indices) of one fold."""
Splitter = Callable[[int | None, int], list[Split]]
"""A task's own splits: ``(n_splits, random_state) -> splits`` (forecasting, sequence tasks)."""


class DataError(ValueError):
    """The data cannot serve the task (missing label, too few classes, no rows...)."""


@dataclass(frozen=True)
class ProblemSpec:
    """What is being learned: tabular task kind, label name and classes (None for regression)."""

    kind: TaskKind
    label: str
    classes: tuple[Any, ...] | None = None

    @property
    def n_classes(self) -> int:
        return len(self.classes) if self.classes is not None else 0

    @property
    def is_classification(self) -> bool:
        return self.kind != "regression"


@dataclass(frozen=True)
class FeatureMatrix:
    """Preprocessed features: a float32 matrix plus which columns are categorical codes."""

    values: np.ndarray  # (n, d) float32; NaN = missing (tree kind only)
    names: tuple[str, ...]
    categorical: tuple[bool, ...]  # per column: an ordinal category code (tree kind)
    cardinalities: tuple[int, ...] = field(default=())  # per categorical column, in order

    @property
    def n_rows(self) -> int:
        return int(self.values.shape[0])


@dataclass(frozen=True)
class Prepared:
    """Filtered, validated data: features, encoded labels and the problem spec.

    Forecasting and sequence tasks (``tasks.forecast``, ``tasks.sequence``) build ``features``
    from the raw rows and add: ``recipe`` (JSON, stored in the bundle so predict can rebuild the
    features), ``split`` (their own ``Splitter``), ``metric_kind`` (the kind metrics are
    resolved for) and ``mase_scale``.
    """

    features: pa.Table
    y: np.ndarray
    spec: ProblemSpec
    dropped_label_nulls: int
    n_rows: int
    recipe: dict[str, Any] | None = None
    split: Splitter | None = None
    metric_kind: str | None = None
    mase_scale: float = 1.0


class FittedModel(Protocol):
    """A trained model of one family on one preprocessed training set."""

    family: str

    def predict_raw(self, X: FeatureMatrix) -> np.ndarray:
        """Raw predictions (probabilities (n, K) or values (n,)), see module docstring."""
        ...

    def to_files(self) -> dict[str, bytes]:
        """The model in safe formats (xgboost UBJ/JSON, safetensors, JSON); never pickle."""
        ...


class Family(Protocol):
    """One model family: search space, defaults, device support, fit, and safe load. Built with
    the operator's ``options.FamilyOptions`` (threads, TabICL checkpoints) by
    ``families.Families``."""

    name: str
    preprocessing: PreprocessingKind

    def available(self) -> str | None:
        """None when usable here, else a clear reason (e.g. missing tabicl checkpoint)."""
        ...

    def supports(self, spec: ProblemSpec, device: Device) -> bool:
        """Whether this family can train ``spec`` on ``device``."""
        ...

    def default_params(self, spec: ProblemSpec) -> dict[str, Any]:
        """Sensible defaults (used for trial 0 and the fixed-budget baseline)."""
        ...

    def suggest(self, trial: optuna.Trial, spec: ProblemSpec) -> dict[str, Any]:
        """Sample one configuration from the family's search space."""
        ...

    def portfolio(self, spec: ProblemSpec) -> list[dict[str, Any]]:
        """Known-good configs tried right after the defaults: values for ``suggest``'s
        distributions (names as in ``suggest``), each within its range."""
        ...

    def fit(
        self,
        X: FeatureMatrix,
        y: np.ndarray,
        X_val: FeatureMatrix | None,
        y_val: np.ndarray | None,
        params: Mapping[str, Any],
        spec: ProblemSpec,
        device: Device,
        seed: int,
    ) -> FittedModel:
        """Train; uses (X_val, y_val) for early stopping when given."""
        ...

    def load(self, files: Mapping[str, bytes], spec: ProblemSpec) -> FittedModel:
        """Rebuild a model from ``FittedModel.to_files()`` output."""
        ...

    def full_data_params(
        self, params: Mapping[str, Any], fold_models: Sequence[FittedModel]
    ) -> dict[str, Any] | None:
        """Params to refit on all rows with no validation set, learnt from a trial's fold
        models (e.g. the boosting rounds early stopping chose); None: refit with an internal
        holdout for early stopping instead."""
        ...


@runtime_checkable
class Hastens(Protocol):
    """A family that can trade a little accuracy for speed when its fit would outlast the
    search's per-fit time limit (``search.budget.fit_limit_s``), so that the fit ends near
    convergence instead of being cut short, undertrained."""

    def hastened(
        self, params: Mapping[str, Any], slowdown: float, spec: ProblemSpec
    ) -> dict[str, Any]:
        """``params`` for a fit whose default configuration is expected to take ``slowdown``
        times the seconds a fit aims at (``families.limits.haste_target``, under the per-fit
        limit), e.g. a larger learning rate; unchanged when it fits."""
        ...


Emit = Callable[[Any], None]
"""Callback receiving event payload models from ``tabstream.schemas.events`` (the worker wraps
them into envelopes)."""


class Artifacts(Protocol):
    """Blob storage as the pipeline sees it: the slice of the ``ArtifactStore`` port it uses
    (structural typing; ``tabstream.adapters.artifacts`` stores fit)."""

    def uri(self, key: str) -> str:
        """The absolute URI of ``key``."""
        ...

    def put_bytes(self, key: str, data: bytes) -> str:
        """Write ``data`` atomically under ``key``; returns its URI."""
        ...

    def get_bytes(self, key: str) -> bytes:
        """Read a whole blob."""
        ...

    def append_bytes(self, key: str, data: bytes) -> None:
        """Append to a blob (created when missing)."""
        ...

    def exists(self, key: str) -> bool:
        """Whether a blob exists under ``key``."""
        ...

    def read_parquet(self, key: str, columns: list[str] | None = None) -> pa.Table:
        """Read a Parquet blob."""
        ...

    def local_path(self, key: str) -> Path | None:
        """A local filesystem path for ``key`` when the store is local, else None."""
        ...


TeacherOutput = dict[str, Any]
"""A teacher-protocol response: ``{"predictions", "probabilities", "classes"}``."""


class Teacher(Protocol):
    """Labels samples: the teacher protocol as a call (an in-process model,
    ``predict.InProcessTeacher``, or the HTTP client in ``tabstream.adapters.teacher``)."""

    def predict(self, samples: list[list[Any]], feature_names: list[str]) -> TeacherOutput:
        """``{"predictions", "probabilities", "classes"}`` for ``samples``."""
        ...
