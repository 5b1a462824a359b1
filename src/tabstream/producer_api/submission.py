"""Run submission rules: checks against the dataset schema, pool routing, request digests."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import Any

from tabstream.common.canonical_json import canonical_json
from tabstream.producer_api.readmodel import Row
from tabstream.schemas import Comparison, TrainerRunRequest, task_columns
from tabstream.schemas.checks import (
    check_pareto_rows,
    check_random_state,
    is_pareto_sweep,
    sweep_families,
)
from tabstream.schemas.filters import BoolExpr, Filter, Not

GPU_FAMILIES = frozenset({"tabm", "xrfm", "tabicl"})
_NUMERIC = ("int", "uint", "float", "double", "halffloat", "decimal")
_TEMPORAL = ("timestamp", "date", "time")
_REGRESSION_KINDS = frozenset({"regression", "forecasting", "sequence_regression"})


def column_kind(arrow_type: str) -> str:
    """'numeric', 'bool', 'string', 'temporal' or 'other' for an Arrow type string."""
    t = arrow_type.lower()
    if t.startswith("dictionary<values=string") or t in ("string", "large_string", "utf8"):
        return "string"
    if t == "bool":
        return "bool"
    if t.startswith(_NUMERIC):
        return "numeric"
    if t.startswith(_TEMPORAL):
        return "temporal"
    return "other"


def admission_errors(request: TrainerRunRequest) -> list[dict[str, Any]]:
    """422 details for what a worker must never be handed: a seed outside [0, 2**32) and a
    Pareto sweep of more than ``MAX_PARETO_ROWS`` rows (counted, never enumerated).

    These are submission rules, not the request's shape: the RunRequested event embeds the
    request, and its published schema stays as it was (the pipeline checks again).
    """
    errors = []
    try:
        check_random_state(request.random_state)
    except ValueError as exc:
        errors.append(_err(["body", "random_state"], str(exc)))
    families = sweep_families(request.model_types)
    try:
        check_pareto_rows(len(request.metrics or []), request.grid_size, families)
    except ValueError as exc:
        errors.append(_err(["body", "grid_size"], str(exc)))
    return errors


def request_notices(request: TrainerRunRequest) -> list[str]:
    """What an accepted request will not do although it asks, said in the 202's message:
    ``grid_size`` with fewer than two metrics runs no Pareto sweep (the reference's rule)."""
    n_metrics = len(request.metrics) if request.metrics else 1
    if request.grid_size is None or is_pareto_sweep(n_metrics, request.grid_size):
        return []
    return [
        f"grid_size {request.grid_size:g} ignored: no Pareto sweep, which needs two or more "
        "metrics (this run optimises one)"
    ]


def check_against_dataset(request: TrainerRunRequest, dataset: Row) -> list[dict[str, Any]]:
    """422 details (FastAPI shape, naming the field) for columns missing or of the wrong type."""
    types = {c["name"]: column_kind(str(c["type"])) for c in dataset.get("columns", [])}
    errors = _task_errors(request, types)
    if request.filter is not None:
        errors += _filter_errors(request.filter, types, ["body", "filter"])
    return errors


def _task_errors(request: TrainerRunRequest, types: dict[str, str]) -> list[dict[str, Any]]:
    task, errors = request.task, []
    fields = ["label_column", "id_column", "timestamp_column"]
    for field, col in zip(fields, task_columns(task), strict=False):
        if col not in types:
            errors.append(_err(["body", "task", field], f"column {col!r} is not in the dataset"))
    label_kind = types.get(task.label_column)
    if task.task_kind in _REGRESSION_KINDS and label_kind not in (None, "numeric", "bool"):
        errors.append(
            _err(
                ["body", "task", "label_column"],
                f"{task.task_kind} needs a numeric label; column {task.label_column!r} "
                f"is {label_kind}",
            )
        )
    return errors


def _filter_errors(node: Filter, types: dict[str, str], loc: list[Any]) -> list[dict[str, Any]]:
    if isinstance(node, BoolExpr):
        return [
            e for i, a in enumerate(node.args) for e in _filter_errors(a, types, [*loc, "args", i])
        ]
    if isinstance(node, Not):
        return _filter_errors(node.arg, types, [*loc, "arg"])
    return _comparison_errors(node, types, loc)


def _comparison_errors(
    cmp: Comparison, types: dict[str, str], loc: list[Any]
) -> list[dict[str, Any]]:
    if cmp.col not in types:
        return [_err([*loc, "col"], f"filter column {cmp.col!r} is not in the dataset")]
    kind = types[cmp.col]
    values: Iterable[Any] = cmp.value if isinstance(cmp.value, list) else [cmp.value]
    bad = [v for v in values if v is not None and not _fits(v, kind)]
    if not bad:
        return []
    return [
        _err([*loc, "value"], f"filter value {bad[0]!r} does not fit column {cmp.col!r} ({kind})")
    ]


def _fits(value: Any, kind: str) -> bool:
    if kind == "numeric":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind in ("string", "temporal"):
        return isinstance(value, str) or (kind == "temporal" and isinstance(value, int))
    return True


def _err(loc: list[Any], msg: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": "value_error"}


def choose_pool(request: TrainerRunRequest, pools: Sequence[str]) -> str:
    """Route a run to a pool.

    With a ``gpu`` pool configured, runs that may use a GPU-benefiting family (tabm, xrfm,
    tabicl, or no explicit ``model_types``: the worker then picks the default set) go to
    ``gpu``; runs of tree families only (xgboost, lightgbm, catboost, extratrees,
    randomforest) go to ``cpu`` when configured. Otherwise the first pool.
    """
    wants_gpu = request.model_types is None or bool(GPU_FAMILIES & set(request.model_types))
    if wants_gpu and "gpu" in pools:
        return "gpu"
    if "cpu" in pools:
        return "cpu"
    return pools[0]


def request_digest(request: TrainerRunRequest, key: bytes) -> str:
    """HMAC-SHA256 of the canonical JSON of a request (secrets included, but never revealed)."""
    canonical = canonical_json(request.model_dump(mode="json"))
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()
