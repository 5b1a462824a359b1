"""Field checks for TrainerRunRequest, kept apart so run.py stays a plain shape."""

from __future__ import annotations

import math
import re
from urllib.parse import urlsplit

REDACTED = "***"
MAX_HEADERS = 32
MAX_HEADER_NAME = 256
MAX_HEADER_VALUE = 8192
MAX_URL = 2048
MAX_PARETO_ROWS = 64
MAX_RANDOM_STATE = 2**32
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
MODEL_TYPES = (
    "tabm",
    "xgboost",
    "xrfm",
    "tabicl",
    "lightgbm",
    "catboost",
    "extratrees",
    "randomforest",
)
DEFAULT_SWEEP_FAMILIES = 4
"""The most default families a Pareto sweep without ``model_types`` trains (the cheapest of the
default set): its rows are weight vectors x families, admitted by ``check_pareto_rows``."""
_CLASSIFICATION = ("auc", "accuracy", "neg_class_error", "logloss", "f1")
_REGRESSION = ("rmse", "mae", "r2")
_FORECASTING = ("mase", "smape")
METRICS = _CLASSIFICATION + _REGRESSION + _FORECASTING


def metrics_for(task_kind: str) -> tuple[str, ...]:
    """The metric names that fit a task kind."""
    if task_kind in ("binclass", "multiclass", "sequence_binclass", "sequence_multiclass"):
        return _CLASSIFICATION
    if task_kind == "forecasting":
        return _REGRESSION + _FORECASTING
    return _REGRESSION


def _unique_nonempty(values: list[str], field: str) -> None:
    if not values:
        raise ValueError(f"{field} must be a non-empty list or null")
    dupes = sorted({v for v in values if values.count(v) > 1})
    if dupes:
        raise ValueError(f"{field} has duplicates: {dupes}")


def check_model_types(values: list[str] | None) -> list[str] | None:
    """Non-empty, unique, known model families."""
    if values is None:
        return None
    _unique_nonempty(values, "model_types")
    unknown = [v for v in values if v not in MODEL_TYPES]
    if unknown:
        raise ValueError(f"unknown model_types {unknown}; valid: {list(MODEL_TYPES)}")
    return values


def check_metrics(values: list[str] | None, task_kind: str) -> None:
    """Non-empty, unique, known metrics that fit the task.

    ``grid_size`` with fewer than two metrics is not an error (the reference is lenient: only
    multi-metric requests sweep, see ``is_pareto_sweep``)."""
    if values is None:
        return
    _unique_nonempty(values, "metrics")
    unknown = [v for v in values if v not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; valid: {list(METRICS)}")
    fits = metrics_for(task_kind)
    for metric in values:
        if metric not in fits:
            raise ValueError(
                f"metric {metric!r} does not fit task kind {task_kind!r}; use one of {list(fits)}"
            )


def is_pareto_sweep(n_metrics: int, grid_size: float | None) -> bool:
    """Whether a run sweeps Pareto weights: ``grid_size`` is set and two or more metrics are
    optimised. With fewer (an omitted ``metrics`` is one default metric), ``grid_size`` is
    accepted and ignored, as in the reference ("multi-metric requests trigger a Pareto sweep
    when grid_size is set")."""
    return grid_size is not None and n_metrics >= 2


def weight_vector_count(n_metrics: int, grid_size: float | None) -> int:
    """Matrix rows per model family: the simplex grid's size in a sweep, else 1."""
    if grid_size is None or not is_pareto_sweep(n_metrics, grid_size):
        return 1
    return pareto_weight_count(n_metrics, grid_size)


def pareto_weight_count(n_metrics: int, grid_size: float) -> int:
    """How many weight vectors a simplex grid of ``grid_size`` over ``n_metrics`` holds,
    counted in closed form (nothing is enumerated)."""
    steps = round(1 / grid_size)
    return math.comb(steps + n_metrics - 1, n_metrics - 1)


def sweep_families(model_types: list[str] | None) -> int:
    """Families a Pareto sweep trains: the request's, else ``DEFAULT_SWEEP_FAMILIES``."""
    return len(model_types) if model_types else DEFAULT_SWEEP_FAMILIES


def check_pareto_rows(n_metrics: int, grid_size: float | None, n_families: int) -> None:
    """The sweep's matrix rows (weight vectors x families) stay within ``MAX_PARETO_ROWS``."""
    if not is_pareto_sweep(n_metrics, grid_size):
        return
    rows = weight_vector_count(n_metrics, grid_size) * n_families
    if rows > MAX_PARETO_ROWS:
        raise ValueError(
            f"grid_size {grid_size:g} over {n_metrics} metrics and {n_families} model types "
            f"would make {rows:,} matrix rows; at most {MAX_PARETO_ROWS} are allowed "
            "(use a larger grid_size or fewer metrics or model_types)"
        )


def check_random_state(value: int) -> None:
    """A seed every library we train with takes: 0 <= value < 2**32."""
    if not 0 <= value < MAX_RANDOM_STATE:
        raise ValueError(f"random_state must be in [0, 2**32); got {value}")


def check_grid_size(value: float | None) -> float | None:
    """A simplex step in (0, 1] whose inverse is an integer."""
    if value is None:
        return None
    if not 0 < value <= 1:
        raise ValueError("grid_size must be in (0, 1]")
    inverse = 1 / value
    if abs(inverse - round(inverse)) > 1e-9:
        raise ValueError("grid_size must divide 1 evenly (e.g. 0.5, 0.25, 0.1)")
    return value


def check_url(value: str | None) -> str | None:
    """An absolute http(s) URL with a host."""
    if value is None:
        return None
    if len(value) > MAX_URL or _BAD_VALUE.search(value) or " " in value:
        raise ValueError("teacher_predict_url is too long or has whitespace/control characters")
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError as exc:
        raise ValueError(f"teacher_predict_url is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("teacher_predict_url must use http or https")
    if not host:
        raise ValueError("teacher_predict_url must name a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("teacher_predict_url must not embed credentials; use headers")
    return value


def check_headers(value: dict[str, str] | None) -> dict[str, str] | None:
    """Valid header tokens, bounded count and sizes, no CR/LF in values."""
    if value is None:
        return None
    if len(value) > MAX_HEADERS:
        raise ValueError(f"teacher_predict_headers allows at most {MAX_HEADERS} headers")
    for name, val in value.items():
        if len(name) > MAX_HEADER_NAME or not _TOKEN.match(name):
            raise ValueError(f"teacher_predict_headers: invalid header name {name[:64]!r}")
        if len(val) > MAX_HEADER_VALUE or _BAD_VALUE.search(val):
            raise ValueError(f"teacher_predict_headers: invalid value for header {name!r}")
    return value
