"""Frozen logs of every released schema must still decode (upcast) and fold to the same state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tabstream.projection.fold import ProjectionState, apply
from tabstream.schemas import decode

ASSETS = Path(__file__).parent / "assets"


def load(name: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in (ASSETS / name).read_text().splitlines()]


@pytest.mark.parametrize("name", sorted(p.name for p in ASSETS.glob("log_v*.jsonl")))
def test_every_frozen_record_decodes(name: str) -> None:
    for line in load(name):
        env = decode(str(line["value"]).encode())
        assert env.aggregate_id == line["key"]


def test_v1_log_folds_to_the_recorded_state() -> None:
    state = ProjectionState()
    for line in load("log_v1.jsonl"):
        state = apply(state, decode(str(line["value"]).encode()))
    jobs = sorted(state.jobs.values(), key=lambda j: j["created_at"])
    assert [j["status"] for j in jobs] == ["completed", "failed", "cancelled", "running"]
    assert [j["tenant"] for j in jobs] == ["acme", "acme", "globex", "acme"]
    first, failed, cancelled, running = jobs
    assert [(a["attempt"], a["outcome"]) for a in first["attempts"]] == [
        (1, "interrupted"),
        (2, "completed"),
    ]
    assert first["error"] is None  # the late JobFailed lost to the first terminal event
    assert first["progress"] == {"trials_done": 6, "trials_total": 6}
    assert [e["family"] for e in first["leaderboard"]] == ["xgboost"]
    assert first["best_model_id"] in state.models
    assert [r["row"] for r in first["rows"]] == [0, 1]
    assert failed["error"] == {"reason": "training_error", "message": "boom"}
    assert cancelled["cancel_requested"] and cancelled["attempts"][-1]["outcome"] == "cancelled"
    assert [(a["attempt"], a["outcome"]) for a in running["attempts"]] == [
        (1, "interrupted"),
        (2, None),
    ]
    assert len(state.datasets) == 1 and len(state.models) == 1
    assert len(state.trials) == 6 + 6 + 6 + 2
