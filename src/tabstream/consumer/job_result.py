"""``jobs/<job_id>/result.json``: the persisted result of a completed job, whose URI is the
``result_uri`` of its JobCompleted (as the reference API's results carry it).

Body: ``{"job_id", "status": "completed", "completed_at", "result_data"}``; ``result_data``
of a trainer job: ``model_id`` (the winner, JobCompleted.best_model_id: the ensemble when
``ensemble=true``, else the best row's refit), ``winner_uris`` (every file of its bundle),
``leaderboard``, ``ensemble``, ``pareto_front``; of a prediction job: ``model_id``,
``result_uri`` (the predictions' Parquet) and ``rows``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from tabstream.adapters.artifacts.port import ArtifactStore
from tabstream.schemas.events import JobCompleted


def result_key(job_id: UUID | str) -> str:
    """The artifact key of a job's result.json."""
    return f"jobs/{job_id}/result.json"


def store_result(artifacts: ArtifactStore, job_id: UUID | str, result_data: dict[str, Any]) -> str:
    """Write the job's result.json (replacing one an earlier attempt left); returns its URI."""
    body = {
        "job_id": str(job_id),
        "status": "completed",
        "completed_at": datetime.now(UTC).isoformat(),
        "result_data": result_data,
    }
    data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return artifacts.put_bytes(result_key(job_id), data)


def trainer_result_data(artifacts: ArtifactStore, completed: JobCompleted) -> dict[str, Any]:
    """``result_data`` of a trainer job from its JobCompleted (without a winner when every row
    failed: ``model_id`` null, no ``winner_uris``)."""
    dumped = completed.model_dump(mode="json")
    model_id = completed.best_model_id
    keys = [] if model_id is None else artifacts.keys(f"models/{model_id}")
    return {
        "model_id": dumped["best_model_id"],
        "winner_uris": [artifacts.uri(key) for key in keys],
        "leaderboard": dumped["leaderboard"],
        "ensemble": dumped["ensemble"],
        "pareto_front": dumped["pareto_front"],
    }


def with_stored_result(artifacts: ArtifactStore, completed: JobCompleted) -> JobCompleted:
    """Store a trainer job's result.json; its JobCompleted with ``result_uri`` pointing at it."""
    uri = store_result(artifacts, completed.job_id, trainer_result_data(artifacts, completed))
    return completed.model_copy(update={"result_uri": uri})
