"""Every CLI client command against a live ``tabstream up`` (subprocesses; JSON parsed back)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.client.conftest import Server

pytestmark = pytest.mark.slow
TIMEOUT_S = 180


def cli(
    server: Server, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``tabstream ARGS`` against ``server``."""
    argv = [sys.executable, "-m", "tabstream.cli", *args]
    return subprocess.run(
        argv, env=env or server.env, capture_output=True, text=True, timeout=TIMEOUT_S
    )


def ok_json(server: Server, *args: str) -> Any:
    done = cli(server, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def refused(done: subprocess.CompletedProcess[str], code: int, fragment: str) -> None:
    assert done.returncode == code, (done.stdout, done.stderr)
    assert fragment in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout


@pytest.fixture(scope="module")
def dataset(server: Server, tiny_csv: Path) -> dict[str, Any]:
    return dict(ok_json(server, "datasets", "add", str(tiny_csv), "--name", "tiny"))


@pytest.fixture(scope="module")
def job(server: Server, dataset: dict[str, Any]) -> dict[str, Any]:
    """A tiny job submitted with a filter, watched to completion by ``tabstream watch``."""
    submitted = ok_json(
        server, "run", "--dataset", dataset["dataset_id"], "--label", "y", "--task", "binclass",
        "--models", "xgboost", "--trials", "2", "--folds", "2",
        "--filter", 'col("ts") >= "2011-01-15" and city in ["Oslo", "Rome", "Lima"]',
    )  # fmt: skip
    assert submitted["status"] in ("pending", "running")
    assert submitted["request"]["filter"]["kind"] == "bool"
    watched = cli(server, "watch", submitted["job_id"])
    assert watched.returncode == 0, watched.stderr
    assert "leaderboard" in watched.stdout and "xgboost" in watched.stdout
    return dict(ok_json(server, "jobs", "show", submitted["job_id"]))


def test_datasets_add_and_list(server: Server, dataset: dict[str, Any]) -> None:
    assert dataset["name"] == "tiny" and dataset["rows"] == 160
    listed = ok_json(server, "datasets", "list")
    assert dataset["dataset_id"] in [d["dataset_id"] for d in listed]
    table = cli(server, "datasets", "list")
    assert table.returncode == 0 and dataset["dataset_id"][:8] in table.stdout


def test_watch_runs_to_completion(job: dict[str, Any]) -> None:
    assert job["status"] == "completed"
    assert job["leaderboard"][0]["family"] == "xgboost"
    assert job["progress"]["trials_done"] == 2


def test_watch_json_lines(server: Server, job: dict[str, Any]) -> None:
    done = cli(server, "watch", job["job_id"], "--json")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    types = [e["type"] for e in events]
    assert types[0] == "RunRequested" and types[-1] == "JobCompleted"
    assert types.count("TrialCompleted") == 2


def test_jobs_list_and_show(server: Server, job: dict[str, Any]) -> None:
    listed = ok_json(server, "jobs", "list")
    assert job["job_id"] in [j["job_id"] for j in listed]
    completed = ok_json(server, "jobs", "list", "--status", "completed")
    assert all(j["status"] == "completed" for j in completed)
    table = cli(server, "jobs", "list")
    assert table.returncode == 0 and "completed" in table.stdout
    shown = cli(server, "jobs", "show", job["job_id"])
    assert shown.returncode == 0 and "leaderboard" in shown.stdout


def test_run_wait_json(server: Server, dataset: dict[str, Any]) -> None:
    final = ok_json(
        server, "run", "--dataset", dataset["dataset_id"], "--label", "y", "--task", "binclass",
        "--models", "xgboost", "--trials", "1", "--folds", "2", "--metrics", "auc,accuracy",
        "--wait",
    )  # fmt: skip
    assert final["status"] == "completed"
    assert set(final["leaderboard"][0]["metrics"]) >= {"auc", "accuracy"}


def test_predict(server: Server, job: dict[str, Any], tiny_csv: Path, tmp_path: Path) -> None:
    model = job["best_model_id"]
    as_csv = cli(server, "predict", model, str(tiny_csv))
    assert as_csv.returncode == 0, as_csv.stderr
    frame = pd.read_csv(io.StringIO(as_csv.stdout))
    assert len(frame) == 160 and {"prediction", "proba_0", "proba_1"} <= set(frame.columns)
    as_json = ok_json(server, "predict", model, str(tiny_csv))
    assert len(as_json["predictions"]) == 160 and as_json["classes"] == [0, 1]
    out = tmp_path / "pred.parquet"
    assert cli(server, "predict", model, str(tiny_csv), "-o", str(out)).returncode == 0
    assert len(pd.read_parquet(out)) == 160


def test_cancel(server: Server, dataset: dict[str, Any], job: dict[str, Any]) -> None:
    refused(cli(server, "cancel", job["job_id"]), 1, "already completed")
    long = ok_json(
        server, "run", "--dataset", dataset["dataset_id"], "--label", "y", "--task", "binclass",
        "--models", "xgboost", "--trials", "500", "--folds", "2",
    )  # fmt: skip
    answer = ok_json(server, "cancel", long["job_id"])
    assert answer["message"] == "cancellation requested"
    watched = cli(server, "watch", long["job_id"])
    refused(watched, 1, "")
    assert "cancelled" in watched.stdout
    assert ok_json(server, "jobs", "show", long["job_id"])["status"] == "cancelled"


def test_user_errors_are_clear(server: Server, dataset: dict[str, Any], tiny_csv: Path) -> None:
    ds = dataset["dataset_id"]
    base = ["run", "--dataset", ds, "--task", "binclass", "--models", "xgboost"]
    refused(cli(server, *base, "--label", "y", "--filter", "ts >> 1"), 2, "position")
    refused(cli(server, *base, "--label", "nope"), 1, "label_column")
    refused(cli(server, *base, "--label", "y", "--models", "knn"), 2, "model_types")
    refused(cli(server, "run", "--dataset", ds, "--label", "y", "--task", "x"), 2, "--task")
    refused(cli(server, "datasets", "add", "/no/such.csv"), 2, "no such file")
    refused(cli(server, "jobs", "show", str(uuid.uuid4())), 1, "not found")
    bad_token = {**server.env, "TABSTREAM_TOKEN": "wrong-token-wrong-token-wrong"}
    refused(cli(server, "jobs", "list", env=bad_token), 1, "401")
    down = {**server.env, "TABSTREAM_URL": "http://127.0.0.1:9"}
    refused(cli(server, "datasets", "list", env=down), 3, "cannot reach")
