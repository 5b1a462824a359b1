"""The projection's reducer: fold envelopes into jobs, trials, datasets and models.

State is plain JSON-ready data (dicts, lists, str, int, float, None), so the store can dump it
canonically. ``apply`` is pure; ``apply_in_place`` is the store's fast path that mutates.

Duplicates and reordering (DESIGN.md §4):

- Worker records (``attempt >= 1``): each (job, attempt, producer service, producer instance)
  keeps the set of applied ``seq`` values as merged ranges and skips an envelope whose seq is
  already in it. In log order that is exactly "skip seq <= last applied seq"; the ranges also
  make a record that arrives out of order (another partition) harmless.
- API records (``attempt == 0``: RunRequested, CancelRequested): each API replica numbers its
  own records, so (job, attempt 0, seq) is not unique: they are deduplicated by ``event_id``.
- Status is derived from facts, not transitions: the first terminal event in log order wins
  and later terminal events are ignored; otherwise ``running`` once a JobStarted was applied;
  otherwise ``pending``. RunRequested (commands topic), CancelRequested (control topic) and
  worker events (events topic) may therefore be read in any interleaving. CancelRequested only
  sets ``cancel_requested``; the status moves when the worker's JobCancelled arrives.
- Fields written by several topics are order-independent: RunRequested's tenant, pool and
  submitted_at override what worker events filled in; without a RunRequested (commands
  retention ran out) ``created_at`` is the earliest ``occurred_at`` seen.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from tabstream.projection import fold_job
from tabstream.projection.fold_job import Json, TrialKey, new_job, ts
from tabstream.schemas.events import DatasetRegistered, Envelope, UploadCompleted, UploadCreated

__all__ = ["ProjectionState", "apply", "apply_in_place", "job_of"]


@dataclass
class ProjectionState:
    """Jobs, trials (by job_id, row, trial), datasets, models, uploads and upload completions
    (the first one folded of each upload: an upload URL is single-use), keyed by their ids."""

    jobs: dict[str, Json] = field(default_factory=dict)
    trials: dict[TrialKey, Json] = field(default_factory=dict)
    datasets: dict[str, Json] = field(default_factory=dict)
    models: dict[str, Json] = field(default_factory=dict)
    uploads: dict[str, Json] = field(default_factory=dict)
    completions: dict[str, Json] = field(default_factory=dict)

    def copy(self) -> ProjectionState:
        """A shallow copy: new maps holding the same aggregate objects."""
        return ProjectionState(
            dict(self.jobs),
            dict(self.trials),
            dict(self.datasets),
            dict(self.models),
            dict(self.uploads),
            dict(self.completions),
        )


def job_of(env: Envelope) -> str | None:
    """The job an envelope belongs to (None for dataset registrations)."""
    job_id: Any = getattr(env.payload, "job_id", None)
    return None if job_id is None else str(job_id)


def apply(state: ProjectionState, env: Envelope) -> ProjectionState:
    """Fold one envelope into a new state; ``state`` itself is left untouched."""
    new = state.copy()
    job_id = job_of(env)
    if job_id is not None and job_id in new.jobs:
        new.jobs[job_id] = copy.deepcopy(new.jobs[job_id])
    apply_in_place(new, env)
    return new


def apply_in_place(state: ProjectionState, env: Envelope, job_id: str | None = None) -> bool:
    """Fold ``env`` into ``state`` by mutation; False when it was skipped as a duplicate.

    Only job dicts are mutated; trials, datasets and models are replaced, never changed, so a
    shallow ``ProjectionState.copy`` plus a deep copy of the touched job isolates a caller.
    ``job_id`` may pass ``job_of(env)`` when the caller already computed it.
    """
    payload = env.payload
    if payload.type in _NOT_JOBS:
        return _apply_not_job(state, env)
    job_id = job_id or job_of(env)
    if job_id is None:
        return False
    jobs = state.jobs
    job = jobs.get(job_id)
    if job is None:
        job = jobs[job_id] = new_job(job_id, env.tenant, ts(env.occurred_at))
    if not _first_time(job, env):
        return False
    _HANDLERS[payload.type](state.trials, state.models, job, env)
    _finish(job, env)
    return True


_first_time, _finish, _HANDLERS = fold_job.first_time, fold_job.finish, fold_job.HANDLERS
_NOT_JOBS = frozenset({"DatasetRegistered", "UploadCreated", "UploadCompleted"})


def _apply_not_job(state: ProjectionState, env: Envelope) -> bool:
    """Datasets and uploads: rows built afresh from one record. The first completion of an
    upload wins (here within a batch; the store keeps the first across batches)."""
    payload = env.payload
    if isinstance(payload, DatasetRegistered):
        state.datasets[str(payload.dataset_id)] = fold_job.dataset_row(env, payload)
    elif isinstance(payload, UploadCreated):
        state.uploads[str(payload.upload_id)] = fold_job.upload_row(env, payload)
    elif isinstance(payload, UploadCompleted):
        upload_id = str(payload.upload_id)
        if upload_id in state.completions:
            return False
        state.completions[upload_id] = fold_job.completion_row(env, payload)
    return True
