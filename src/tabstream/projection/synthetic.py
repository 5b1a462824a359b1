"""Synthetic, realistic job histories (deterministic from a seed) for tests and benchmarks."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from tabstream.schemas.datasets import ColumnInfo
from tabstream.schemas.events import (
    CancelRequested,
    DatasetRegistered,
    Envelope,
    EventPayload,
    JobCancelled,
    JobCompleted,
    JobFailed,
    JobInterrupted,
    JobStarted,
    ModelRegistered,
    Producer,
    RowCompleted,
    RunRequested,
    TrialCompleted,
)
from tabstream.schemas.results import Feature, LeaderboardEntry
from tabstream.schemas.run import TrainerRunRequest
from tabstream.schemas.tasks import RegressionTask

Outcome = Literal["completed", "failed", "cancelled", "running"]
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
API = Producer(service="api", instance="api-1")
SHA = "0" * 64


@dataclass
class JobHistory:
    """One job's envelopes per topic kind ("commands", "control", "events"), each in order."""

    job_id: str
    streams: dict[str, list[Envelope]] = field(default_factory=dict)


class Synth:
    """Builds envelopes with ids and times drawn from one seeded RNG."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.clock = EPOCH

    def new_id(self) -> uuid.UUID:
        """A deterministic uuid4."""
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def wrap(
        self, payload: EventPayload, tenant: str, producer: Producer, attempt: int, seq: int
    ) -> Envelope:
        """Envelope ``payload`` with a deterministic event_id and a clock that moves on."""
        self.clock += timedelta(milliseconds=self.rng.randint(1, 900))
        env = Envelope.wrap(payload, tenant=tenant, producer=producer, attempt=attempt, seq=seq)
        return env.model_copy(update={"event_id": self.new_id(), "occurred_at": self.clock})

    def dataset(self, tenant: str) -> Envelope:
        """A DatasetRegistered of a small regression table."""
        cols = [ColumnInfo(name=n, type="double", nulls=0) for n in ("a", "b", "y")]
        p = DatasetRegistered(
            dataset_id=self.new_id(),
            name="houses",
            rows=1000,
            columns=cols,
            sha256=SHA,
            uri="file:///data/houses.parquet",
            created_at=self.clock,
        )
        return self.wrap(p, tenant, API, 0, 0)

    def job(
        self,
        tenant: str,
        dataset_id: uuid.UUID,
        *,
        rows: int = 2,
        trials: int = 3,
        attempts: int = 1,
        outcome: Outcome = "completed",
        cancel: bool = False,
    ) -> JobHistory:
        """A job: RunRequested, optional CancelRequested, then attempts of worker events."""
        job_id = self.new_id()
        request = TrainerRunRequest(
            dataset_id=dataset_id, task=RegressionTask(label_column="y"), n_trials=trials
        )
        run = RunRequested(
            job_id=job_id,
            dataset_id=dataset_id,
            request=request,
            pool="cpu",
            submitted_at=self.clock,
            request_digest="d" * 64,
        )
        history = JobHistory(str(job_id))
        history.streams["commands"] = [self.wrap(run, tenant, API, 0, 0)]
        control = [CancelRequested(job_id=job_id, reason="user")] if cancel else []
        history.streams["control"] = [self.wrap(c, tenant, API, 0, 0) for c in control]
        history.streams["events"] = self._events(tenant, job_id, rows, trials, attempts, outcome)
        return history

    def _events(
        self,
        tenant: str,
        job_id: uuid.UUID,
        rows: int,
        trials: int,
        attempts: int,
        outcome: Outcome,
    ) -> list[Envelope]:
        out: list[Envelope] = []
        for attempt in range(1, attempts + 1):
            worker = Producer(service="worker", instance=f"w-{attempt}")
            payloads: list[EventPayload] = []
            if attempt > 1:
                payloads.append(
                    JobInterrupted(job_id=job_id, lost_attempt=attempt - 1, reason="worker lost")
                )
            payloads.append(
                JobStarted(
                    job_id=job_id,
                    attempt=attempt,
                    worker=worker.instance,
                    device="cpu",
                    pool="cpu",
                    model_types=["xgboost", "tabm"][:rows],
                    default_models_chosen=False,
                    trials_total=rows * trials,
                )
            )
            last = attempt == attempts
            payloads += self._work(job_id, rows, trials, full=last and outcome != "running")
            if last and outcome != "running":
                payloads += self._finish(job_id, outcome, attempt)
            out += [self.wrap(p, tenant, worker, attempt, s) for s, p in enumerate(payloads)]
        return out

    def _work(self, job_id: uuid.UUID, rows: int, trials: int, full: bool) -> list[EventPayload]:
        out: list[EventPayload] = []
        for row in range(rows):
            family = ("xgboost", "tabm", "xrfm", "tabicl")[row % 4]
            scores = []
            for trial in range(trials if full else 1):
                score = round(self.rng.uniform(0.1, 1.0), 6)
                scores.append(score)
                m = {"rmse": score, "mae": round(score * 0.8, 6)}
                out.append(
                    TrialCompleted(
                        job_id=job_id,
                        row=row,
                        family=family,
                        trial=trial,
                        state="complete",
                        params={"eta": round(self.rng.uniform(0.01, 0.3), 4), "depth": trial + 3},
                        fold_metrics=[m, m, m],
                        metrics=m,
                        score=score,
                        fit_seconds=1.5,
                        predict_seconds=0.1,
                        device="cpu",
                    )
                )
            if full:
                best = min(range(len(scores)), key=scores.__getitem__)
                out.append(
                    RowCompleted(
                        job_id=job_id,
                        row=row,
                        family=family,
                        best_trial=best,
                        best_params={"depth": best + 3},
                        best_metrics={"rmse": scores[best]},
                        score=scores[best],
                        n_trials=trials,
                        n_failed=0,
                    )
                )
        return out

    def _finish(self, job_id: uuid.UUID, outcome: Outcome, attempt: int) -> list[EventPayload]:
        if outcome == "failed":
            return [
                JobFailed(job_id=job_id, error="boom", reason="training_error", attempt=attempt)
            ]
        if outcome == "cancelled":
            return [JobCancelled(job_id=job_id, reason="user")]
        model_id = self.new_id()
        model = ModelRegistered(
            model_id=model_id,
            job_id=job_id,
            kind="single",
            families=["xgboost"],
            uri=f"file:///models/{model_id}",
            sha256=SHA,
            task=RegressionTask(label_column="y"),
            metrics={"rmse": 0.2},
            features=[Feature(name="a", type="double")],
            created_at=self.clock,
        )
        board = [
            LeaderboardEntry(
                row=0,
                family="xgboost",
                score=0.2,
                metrics={"rmse": 0.2},
                params={"depth": 3},
                model_id=model_id,
            )
        ]
        done = JobCompleted(
            job_id=job_id, leaderboard=board, best_model_id=model_id, duration_s=12.5
        )
        return [model, done]
