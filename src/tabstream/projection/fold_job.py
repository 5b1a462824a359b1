"""Per-event handlers of the fold (see ``fold`` for the rules they implement)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

from tabstream.schemas.events import (
    CancelRequested,
    DatasetRegistered,
    Envelope,
    JobCancelled,
    JobCompleted,
    JobFailed,
    JobInterrupted,
    JobStarted,
    ModelRegistered,
    PredictionsWritten,
    PredictRequested,
    RowCompleted,
    RunRequested,
    TrialCompleted,
    UploadCompleted,
    UploadCreated,
)

Json = dict[str, Any]
TrialKey = tuple[str, int, int]
Handler = Callable[[dict[TrialKey, Json], dict[str, Json], Json, Envelope], None]
TERMINAL_STATUS = {"JobCompleted": "completed", "JobFailed": "failed", "JobCancelled": "cancelled"}


def ts(value: datetime) -> str:
    """A fixed-width UTC timestamp (``...T12:00:00.000000+00:00``) that sorts as text."""
    if value.tzinfo is not UTC:  # envelopes' occurred_at are UTC already (validated so)
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")


def new_job(job_id: str, tenant: str, seen_at: str) -> Json:
    """A job known only by id (its RunRequested may come later, from another topic)."""
    return {
        "job_id": job_id,
        "tenant": tenant,
        "dataset_id": None,
        "status": "pending",
        "pool": None,
        "request": None,
        "request_digest": None,
        "idempotency_key": None,
        "created_at": seen_at,
        "started_at": None,
        "finished_at": None,
        "progress": {"trials_done": 0, "trials_total": None},
        "model_types": None,
        "default_models_chosen": None,
        "attempts": [],
        "rows": [],
        "leaderboard": None,
        "best_model_id": None,
        "ensemble": None,
        "pareto_front": None,
        "result_uri": None,
        "duration_s": None,
        "notes": [],
        "models": [],
        "error": None,
        "cancel_requested": False,
        "cancel_reason": None,
        "meta": {
            "requested": False,
            "started": False,
            "terminal": None,
            "commands": {},
            "seqs": {},
            "trials": {},
        },
    }


def first_time(job: Json, env: Envelope) -> bool:
    """Record ``env`` as applied to ``job``; False when it already was (a duplicate)."""
    meta = job["meta"]
    attempt = env.attempt
    if attempt == 0:
        event_id = str(env.event_id)
        commands = meta["commands"]
        if event_id in commands:
            return False
        commands[event_id] = env.type
        return True
    producer = env.producer
    key = f"{attempt}/{producer.service}/{producer.instance}"
    seqs = meta["seqs"]
    ranges = seqs.get(key)
    if ranges is None:
        ranges = seqs[key] = []
    return add_seq(ranges, env.seq)


def add_seq(ranges: list[list[int]], seq: int) -> bool:
    """Add ``seq`` to sorted disjoint inclusive ranges; False when already present."""
    if ranges and ranges[-1][1] + 1 == seq:
        ranges[-1][1] = seq
        return True
    if any(lo <= seq <= hi for lo, hi in ranges):
        return False
    ranges.append([seq, seq])
    ranges.sort()
    merged = [ranges[0]]
    for lo, hi in ranges[1:]:
        if lo == merged[-1][1] + 1:
            merged[-1][1] = hi
        else:
            merged.append([lo, hi])
    ranges[:] = merged
    return True


def finish(job: Json, env: Envelope) -> None:
    """Derive status and the fallback created_at after a handler ran."""
    meta = job["meta"]
    if not meta["requested"]:
        job["created_at"] = min(job["created_at"], ts(env.occurred_at))
    terminal = meta["terminal"]
    if terminal is not None:
        job["status"] = TERMINAL_STATUS[terminal]
    else:
        job["status"] = "running" if meta["started"] else "pending"


def dataset_row(env: Envelope, p: DatasetRegistered) -> Json:
    """The dataset aggregate of a DatasetRegistered (``source`` only when it has one)."""
    row = {
        "dataset_id": str(p.dataset_id),
        "tenant": env.tenant,
        "name": p.name,
        "rows": p.rows,
        "columns": [c.model_dump(mode="json") for c in p.columns],
        "sha256": p.sha256,
        "uri": p.uri,
        "created_at": ts(p.created_at),
    }
    if p.source is not None:
        row["source"] = p.source.model_dump(mode="json", exclude_none=True)
    return row


def upload_row(env: Envelope, p: UploadCreated) -> Json:
    """The upload aggregate of an UploadCreated."""
    return {
        "upload_id": str(p.upload_id),
        "tenant": env.tenant,
        "file_format": p.file_format,
        "expires_at": ts(p.expires_at),
        "created_at": ts(p.created_at),
    }


def completion_row(env: Envelope, p: UploadCompleted) -> Json:
    """The completion of an upload: where its bytes are."""
    return {
        "upload_id": str(p.upload_id),
        "tenant": env.tenant,
        "key": p.key,
        "size_bytes": p.size_bytes,
        "sha256": p.sha256,
        "completed_at": ts(p.completed_at),
    }


def _run_requested(_t: dict[TrialKey, Json], _m: dict[str, Json], job: Json, env: Envelope) -> None:
    """The first command of a job wins: a retry of an idempotent submission that reached
    another API replica publishes a second one for the same job id (workers skip it)."""
    if job["meta"]["requested"]:
        return
    p = cast(RunRequested, env.payload)
    job["meta"]["requested"] = True
    job.update(
        tenant=env.tenant,
        dataset_id=str(p.dataset_id),
        pool=p.pool,
        request=p.request.redacted().model_dump(mode="json"),
        request_digest=p.request_digest,
        idempotency_key=p.idempotency_key,
        created_at=ts(p.submitted_at),
    )


def _predict_requested(
    _t: dict[TrialKey, Json], _m: dict[str, Json], job: Json, env: Envelope
) -> None:
    p = cast(PredictRequested, env.payload)
    job["meta"]["requested"] = True
    job.update(
        kind="predict",
        tenant=env.tenant,
        pool=p.pool,
        request={
            "model_id": str(p.model_id),
            "dataset": p.source.model_dump(mode="json", exclude_none=True),
        },
        created_at=ts(p.submitted_at),
    )


def _predictions_written(
    _t: dict[TrialKey, Json], _m: dict[str, Json], job: Json, env: Envelope
) -> None:
    p = cast(PredictionsWritten, env.payload)
    job["kind"] = "predict"
    job["predictions"] = {
        "model_id": str(p.model_id),
        "uri": p.uri,
        "rows": p.rows,
        "sha256": p.sha256,
    }


def _cancel_requested(
    _t: dict[TrialKey, Json], _m: dict[str, Json], job: Json, env: Envelope
) -> None:
    p = cast(CancelRequested, env.payload)
    job["cancel_requested"] = True
    job["cancel_reason"] = job["cancel_reason"] or p.reason


def _attempt(job: Json, number: int) -> Json:
    for entry in job["attempts"]:
        if entry["attempt"] == number:
            return cast(Json, entry)
    entry = {
        "attempt": number,
        "worker": None,
        "device": None,
        "started_at": None,
        "ended_at": None,
        "outcome": None,
        "reason": None,
    }
    job["attempts"].append(entry)
    job["attempts"].sort(key=lambda a: a["attempt"])
    return entry


def _job_started(_t: dict[TrialKey, Json], _m: dict[str, Json], job: Json, env: Envelope) -> None:
    p = cast(JobStarted, env.payload)
    at = ts(env.occurred_at)
    job["meta"]["started"] = True
    job["started_at"] = min(job["started_at"] or at, at)
    job["pool"] = job["pool"] if job["meta"]["requested"] else p.pool
    job["model_types"] = list(p.model_types)
    job["default_models_chosen"] = p.default_models_chosen
    job["progress"]["trials_total"] = p.trials_total
    _attempt(job, p.attempt).update(worker=p.worker, device=p.device, started_at=at)


def _trial_completed(
    trials: dict[TrialKey, Json], _m: dict[str, Json], job: Json, env: Envelope
) -> None:
    p: TrialCompleted = env.payload  # type: ignore[assignment]
    row, trial, job_id = p.row, p.trial, job["job_id"]
    seen = job["meta"]["trials"]
    seen[f"{row}:{trial}"] = 1
    job["progress"]["trials_done"] = len(seen)
    fit, predict = p.fit_seconds, p.predict_seconds
    trials[(job_id, row, trial)] = {
        "job_id": job_id,
        "tenant": env.tenant,
        "row": row,
        "trial": trial,
        "family": p.family,
        "weights": p.weights,
        "state": p.state,
        "params": p.params,
        "metrics": p.metrics,
        "fold_metrics": p.fold_metrics,
        "score": p.score,
        "fit_seconds": fit,
        "predict_seconds": predict,
        "seconds": fit + predict,
        "device": p.device,
        "error": p.error,
        "attempt": env.attempt,
        "completed_at": ts(env.occurred_at),
    }


def _row_completed(_t: dict[TrialKey, Json], _m: dict[str, Json], job: Json, env: Envelope) -> None:
    p = cast(RowCompleted, env.payload)
    row = p.model_dump(mode="json", exclude={"type", "job_id"})
    job["rows"] = sorted(
        [r for r in job["rows"] if r["row"] != p.row] + [row], key=lambda r: r["row"]
    )


def _model_registered(
    _t: dict[TrialKey, Json], models: dict[str, Json], job: Json, env: Envelope
) -> None:
    p = cast(ModelRegistered, env.payload)
    model = p.model_dump(mode="json", exclude={"type"})
    model["tenant"] = env.tenant
    model["created_at"] = ts(p.created_at)
    models[model["model_id"]] = model
    if model["model_id"] not in job["models"]:
        job["models"] = sorted([*job["models"], model["model_id"]])


def _terminal(job: Json, env: Envelope, attempt: int, outcome: str) -> bool:
    """Mark the first terminal event; False (ignore it) when the job already ended."""
    meta = job["meta"]
    if meta["terminal"] is not None:
        return False
    meta["terminal"] = env.type
    job["finished_at"] = ts(env.occurred_at)
    if attempt >= 1:
        _attempt(job, attempt).update(ended_at=job["finished_at"], outcome=outcome)
    return True


def _job_completed(_t: dict[TrialKey, Json], _m: dict[str, Json], job: Json, env: Envelope) -> None:
    p = cast(JobCompleted, env.payload)
    if _terminal(job, env, env.attempt, "completed"):
        done = p.model_dump(mode="json", exclude={"type", "job_id"})
        for name in (
            "leaderboard",
            "best_model_id",
            "ensemble",
            "pareto_front",
            "result_uri",
            "duration_s",
            "notes",
        ):
            job[name] = done[name]


def _job_failed(_t: dict[TrialKey, Json], _m: dict[str, Json], job: Json, env: Envelope) -> None:
    p = cast(JobFailed, env.payload)
    if _terminal(job, env, p.attempt or env.attempt, "failed"):
        job["error"] = {"reason": p.reason, "message": p.error}


def _job_cancelled(_t: dict[TrialKey, Json], _m: dict[str, Json], job: Json, env: Envelope) -> None:
    p = cast(JobCancelled, env.payload)
    if _terminal(job, env, env.attempt, "cancelled"):
        job["cancel_reason"] = p.reason or job["cancel_reason"]


def _job_interrupted(
    _t: dict[TrialKey, Json], _m: dict[str, Json], job: Json, env: Envelope
) -> None:
    p = cast(JobInterrupted, env.payload)
    if p.lost_attempt >= 1:
        _attempt(job, p.lost_attempt).update(
            ended_at=ts(env.occurred_at), outcome="interrupted", reason=p.reason
        )


HANDLERS: dict[str, Handler] = {
    "RunRequested": _run_requested,
    "PredictRequested": _predict_requested,
    "PredictionsWritten": _predictions_written,
    "CancelRequested": _cancel_requested,
    "JobStarted": _job_started,
    "TrialCompleted": _trial_completed,
    "RowCompleted": _row_completed,
    "ModelRegistered": _model_registered,
    "JobCompleted": _job_completed,
    "JobFailed": _job_failed,
    "JobCancelled": _job_cancelled,
    "JobInterrupted": _job_interrupted,
}
