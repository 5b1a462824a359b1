"""The worker's job ledger: what the events topic says of each job."""

from __future__ import annotations

import uuid
from typing import Any

from tabstream.adapters.bus.port import Record
from tabstream.consumer.ledger import JobLedger
from tabstream.schemas.events import (
    Envelope,
    EventPayload,
    JobFailed,
    Producer,
    TrialCompleted,
    encode,
    headers,
)

JOB = uuid.UUID(int=7)


class _NoTail:
    def route(self, topic: str, handler: Any) -> None:
        pass


def _apply(ledger: JobLedger, payload: EventPayload, offset: int) -> None:
    env = Envelope.wrap(payload, tenant="acme", producer=Producer(service="w", instance="w"))
    ledger.apply(Record("events", 0, offset, str(JOB), encode(env), headers(env)))


def _trial(row: int, trial: int) -> TrialCompleted:
    return TrialCompleted(
        job_id=JOB,
        row=row,
        family="xgboost",
        trial=trial,
        state="complete",
        params={},
        fold_metrics=[],
        metrics={"auc": 0.5},
        score=0.5,
        fit_seconds=0.1,
        predict_seconds=0.0,
        device="cpu",
    )


def test_announced_trials_are_known_until_the_job_ends() -> None:
    ledger = JobLedger(_NoTail(), "events")  # type: ignore[arg-type]
    for offset, (row, trial) in enumerate([(0, 0), (0, 1), (1, 0), (0, 1)]):
        _apply(ledger, _trial(row, trial), offset)
    assert ledger.get(str(JOB)).announced == {(0, 0), (0, 1), (1, 0)}
    _apply(ledger, JobFailed(job_id=JOB, error="boom", reason="training_error", attempt=1), 9)
    assert ledger.get(str(JOB)).announced == set()
    assert ledger.get(str(JOB)).terminal == "JobFailed"
