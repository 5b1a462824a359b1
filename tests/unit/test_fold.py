"""The fold, event type by event type: status rules, attempts, dedup, cross-topic order."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from tabstream.projection.fold import ProjectionState, apply
from tabstream.projection.fold_job import add_seq
from tabstream.projection.synthetic import JobHistory, Synth
from tabstream.schemas import (
    CancelRequested,
    Envelope,
    JobCancelled,
    JobCompleted,
    JobFailed,
    Producer,
)

WORKER = Producer(service="worker", instance="w-1")


def fold(envs: Iterable[Envelope], state: ProjectionState | None = None) -> ProjectionState:
    state = state or ProjectionState()
    for env in envs:
        state = apply(state, env)
    return state


def history(**kw: object) -> tuple[Synth, JobHistory]:
    synth = Synth(7)
    return synth, synth.job("acme", uuid.uuid4(), **kw)  # type: ignore[arg-type]


def test_run_requested_makes_a_pending_job_with_the_request_echo() -> None:
    _, h = history()
    job = fold(h.streams["commands"]).jobs[h.job_id]
    assert job["status"] == "pending"
    assert job["tenant"] == "acme" and job["pool"] == "cpu"
    assert job["request"]["n_trials"] == 3
    assert job["attempts"] == [] and job["progress"]["trials_done"] == 0


def test_worker_events_run_and_complete_the_job() -> None:
    _, h = history(rows=2, trials=3)
    events = h.streams["events"]
    started = fold(h.streams["commands"] + events[:1]).jobs[h.job_id]
    assert started["status"] == "running"
    assert started["attempts"][0]["worker"] == "w-1" and started["progress"]["trials_total"] == 6
    state = fold(h.streams["commands"] + events)
    job = state.jobs[h.job_id]
    assert job["status"] == "completed"
    assert job["progress"] == {"trials_done": 6, "trials_total": 6}
    assert [r["row"] for r in job["rows"]] == [0, 1]
    assert job["leaderboard"][0]["family"] == "xgboost"
    assert job["best_model_id"] in state.models and job["models"] == [job["best_model_id"]]
    assert job["attempts"][0]["outcome"] == "completed" and job["finished_at"]
    assert len(state.trials) == 6
    assert {t["state"] for t in state.trials.values()} == {"complete"}


def test_interrupted_attempts_stay_visible() -> None:
    _, h = history(attempts=3)
    job = fold(h.streams["commands"] + h.streams["events"]).jobs[h.job_id]
    outcomes = [(a["attempt"], a["outcome"]) for a in job["attempts"]]
    assert outcomes == [(1, "interrupted"), (2, "interrupted"), (3, "completed")]
    assert job["status"] == "completed"


def test_interruption_keeps_the_job_running() -> None:
    _, h = history(attempts=2)
    events = h.streams["events"]
    cut = next(i for i, e in enumerate(events) if e.type == "JobInterrupted")
    job = fold(h.streams["commands"] + events[: cut + 1]).jobs[h.job_id]
    assert job["status"] == "running"
    assert job["attempts"][0]["outcome"] == "interrupted"


def test_failed_and_cancelled_outcomes() -> None:
    _, failed = history(outcome="failed")
    job = fold(failed.streams["commands"] + failed.streams["events"]).jobs[failed.job_id]
    assert job["status"] == "failed"
    assert job["error"] == {"reason": "training_error", "message": "boom"}
    _, cancelled = history(outcome="cancelled", cancel=True)
    streams = cancelled.streams
    job = fold(streams["commands"] + streams["control"] + streams["events"]).jobs[cancelled.job_id]
    assert job["status"] == "cancelled" and job["cancel_requested"]
    assert job["attempts"][-1]["outcome"] == "cancelled"


def test_cancel_requested_only_flags_until_the_worker_cancels() -> None:
    _synth, h = history(outcome="running", cancel=True)
    job = fold(h.streams["commands"] + h.streams["events"] + h.streams["control"]).jobs[h.job_id]
    assert job["status"] == "running" and job["cancel_requested"]
    assert job["cancel_reason"] == "user"


def test_first_terminal_event_wins() -> None:
    synth, h = history()
    events = h.streams["events"]
    job_id = uuid.UUID(h.job_id)
    seq = len(events)
    late = [
        synth.wrap(
            JobFailed(job_id=job_id, error="late", reason="crashed", attempt=1),
            "acme",
            WORKER,
            1,
            seq,
        ),
        synth.wrap(JobCancelled(job_id=job_id), "acme", WORKER, 1, seq + 1),
    ]
    state = fold(h.streams["commands"] + events + late)
    job = state.jobs[h.job_id]
    assert job["status"] == "completed" and job["error"] is None
    assert job["finished_at"] == fold(h.streams["commands"] + events).jobs[h.job_id]["finished_at"]


def test_later_non_terminal_events_do_not_move_status_back() -> None:
    _, h = history()
    events = h.streams["events"]
    started = [e for e in events if e.type == "JobStarted"]
    replayed_start = started[0].model_copy(update={"seq": 999, "event_id": uuid.uuid4()})
    job = fold(h.streams["commands"] + events + [replayed_start]).jobs[h.job_id]
    assert job["status"] == "completed"


def test_worker_events_before_the_run_request_are_fine() -> None:
    _, h = history()
    in_order = fold(h.streams["commands"] + h.streams["events"])
    reversed_topics = fold(h.streams["events"] + h.streams["commands"])
    assert in_order.jobs == reversed_topics.jobs
    assert in_order.jobs[h.job_id]["created_at"] == reversed_topics.jobs[h.job_id]["created_at"]


def test_duplicates_are_skipped_by_seq_and_event_id() -> None:
    _, h = history()
    envs = h.streams["commands"] + h.streams["events"]
    doubled = [e for env in envs for e in (env, env)]
    assert fold(doubled).jobs == fold(envs).jobs
    same_seq_other_id = envs[3].model_copy(update={"event_id": uuid.uuid4()})
    assert fold([*envs, same_seq_other_id]).jobs == fold(envs).jobs


def test_api_commands_are_deduplicated_by_event_id_not_seq() -> None:
    synth, h = history(outcome="running")
    job_id = uuid.UUID(h.job_id)
    api = Producer(service="api", instance="api-2")
    cancel = synth.wrap(CancelRequested(job_id=job_id, reason="again"), "acme", api, 0, 0)
    job = fold(h.streams["commands"] + [cancel]).jobs[h.job_id]
    assert job["cancel_requested"]  # same (attempt 0, seq 0) as RunRequested, still applied


def test_datasets_and_models_are_registered() -> None:
    synth = Synth(3)
    ds = synth.dataset("acme")
    h = synth.job("acme", ds.payload.dataset_id)  # type: ignore[union-attr]
    state = fold([ds, *h.streams["commands"], *h.streams["events"]])
    dataset = state.datasets[str(ds.payload.dataset_id)]  # type: ignore[union-attr]
    assert dataset["tenant"] == "acme" and dataset["rows"] == 1000
    (model,) = state.models.values()
    assert model["job_id"] == h.job_id and model["tenant"] == "acme"


def test_apply_is_pure() -> None:
    _, h = history()
    envs = h.streams["commands"] + h.streams["events"]
    before = fold(envs[:-1])
    snapshot = {k: repr(v) for k, v in before.jobs.items()}
    after = apply(before, envs[-1])
    assert {k: repr(v) for k, v in before.jobs.items()} == snapshot
    assert after.jobs[h.job_id]["status"] == "completed"
    assert before.jobs[h.job_id]["status"] == "running"


def test_completion_payload_fields_are_copied() -> None:
    _synth, h = history()
    done = next(e for e in h.streams["events"] if isinstance(e.payload, JobCompleted))
    job = fold(h.streams["commands"] + h.streams["events"]).jobs[h.job_id]
    assert job["duration_s"] == done.payload.duration_s  # type: ignore[union-attr]


def test_seq_ranges_merge() -> None:
    ranges: list[list[int]] = []
    assert all(add_seq(ranges, s) for s in (0, 1, 5, 3, 2, 4))
    assert ranges == [[0, 5]]
    assert not add_seq(ranges, 3)
    assert add_seq(ranges, 9) and ranges == [[0, 5], [9, 9]]
