"""Submission checks for ``teacher_model_id``: the tenant's model, with a compatible task and
a feature set the dataset can feed (422 naming the missing features)."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException

from tabstream.producer_api.readmodel import JobReadModel, Row
from tabstream.schemas import TrainerRunRequest

_CLASSIFICATION = frozenset({"binclass", "multiclass"})


def teacher_errors(
    read_model: JobReadModel, tenant: str, body: TrainerRunRequest, dataset: Row
) -> list[dict[str, Any]]:
    """422 details for an incompatible teacher; HTTPException 404 for an unknown one."""
    if body.teacher_model_id is None:
        return []
    teacher = read_model.get_model(tenant, str(body.teacher_model_id))
    if teacher is None:
        raise HTTPException(404, f"teacher model {body.teacher_model_id} not found")
    loc = ["body", "teacher_model_id"]
    columns = {c["name"] for c in dataset.get("columns", [])} - {body.task.label_column}
    needed = [f["name"] for f in teacher.get("features", [])]
    missing = [n for n in needed if n not in columns]
    errors = []
    if missing:
        errors.append(_err(loc, f"teacher model needs features the dataset lacks: {missing}"))
    kind = (teacher.get("task") or {}).get("task_kind")
    if kind is not None and not _compatible(kind, body.task.task_kind):
        errors.append(_err(loc, f"teacher is a {kind} model; the run is {body.task.task_kind}"))
    return errors


def _compatible(teacher: str, student: str) -> bool:
    if student in _CLASSIFICATION:
        return teacher in _CLASSIFICATION
    return teacher == student


def _err(loc: list[Any], msg: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": "value_error"}
