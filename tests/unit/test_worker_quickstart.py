"""``tabstream quickstart``'s machinery end to end: API, projection and a worker slot in one
process on the embedded log; dataset upload, TrainerRun over REST, SSE progress, leaderboard."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from tabstream.cli.quickstart import quickstart


@pytest.mark.slow
async def test_quickstart_runs_the_main_job_end_to_end(tmp_path: Path) -> None:
    out = io.StringIO()
    job = await quickstart(Console(file=out, width=120), data_dir=tmp_path)
    assert job["status"] == "completed", job.get("error")
    assert [e["family"] for e in job["leaderboard"]] != []
    assert {e["family"] for e in job["leaderboard"]} == {"xgboost", "xrfm"}
    assert job["best_model_id"]
    text = out.getvalue()
    assert "leaderboard" in text and str(job["best_model_id"]) in text
    assert (tmp_path / "api.token").stat().st_mode & 0o777 == 0o600
