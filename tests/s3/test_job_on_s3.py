"""End to end on a real S3-compatible server: ``tabstream up`` (API, worker, job children) with
``TABSTREAM_ARTIFACTS_URI=s3://...`` keeps the dataset, the HPO journal, the model bundle and
the predictions in the bucket, and a job outlives a restart of the server mid-job."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.fs as pafs
import pytest

from tabstream.client import Client
from tabstream.schemas import BinclassTask
from tests.client.conftest import TINY_RUN, Server, start_server, stop, tiny_frame
from tests.helpers.s3 import OwnS3Server, S3Server

pytestmark = [pytest.mark.s3, pytest.mark.slow]
RESTART_TRIALS = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bucket_keys(server: S3Server, prefix: str) -> list[str]:
    """The objects under ``prefix``, relative to it, as the server lists them."""
    selector = pafs.FileSelector(prefix, recursive=True, allow_not_found=True)
    infos = server.filesystem().get_file_info(selector)
    return sorted(i.path[len(prefix) + 1 :] for i in infos if i.type == pafs.FileType.File)


def slower_frame(rows: int = 1200) -> pd.DataFrame:
    """A table whose xgboost trials take a second or two each (one thread): a job long enough
    to stop the S3 server under it."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(rows, 8))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(8)])
    frame["y"] = (x[:, 0] + x[:, 1] * x[:, 2] + rng.normal(scale=0.5, size=rows) > 0).astype(int)
    return frame


@contextlib.contextmanager
def stack_on(server: S3Server, tmp: Path, **extra: str) -> Iterator[tuple[Server, str]]:
    """``tabstream up`` with its artifacts under a fresh prefix of ``server``'s bucket."""
    prefix = server.fresh_prefix()
    tmp.mkdir(parents=True, exist_ok=True)
    env = {**server.env(f"s3://{prefix}"), "TABSTREAM_FAMILY_THREADS": "1", **extra}
    running, proc = start_server(tmp, env)
    try:
        yield running, prefix
    finally:
        stop(proc)
        with contextlib.suppress(OSError):
            server.filesystem().delete_dir(prefix)


def test_a_job_keeps_its_artifacts_in_the_bucket(s3_server: S3Server, tmp_path: Path) -> None:
    with stack_on(s3_server, tmp_path) as (server, prefix):
        api = Client(server.url, server.token)
        dataset = api.upload_dataset(tiny_frame(), name="on-s3")
        job = api.run(dataset.dataset_id, BinclassTask(label_column="y"), **TINY_RUN)
        assert job.wait(timeout=180).status == "completed"
        model = job.best_model()
        sync = model.predict(tiny_frame(rows=20, seed=1))  # the API loads the bundle from S3
        assert len(sync.predictions) == 20 and sync.classes == [0, 1]
        scored = model.predict_dataset(tiny_frame(rows=30, seed=2), timeout=120)
        assert len(scored) == 30
        keys = bucket_keys(s3_server, prefix)
        assert f"datasets/{dataset.dataset_id}/data.parquet" in keys
        assert f"jobs/{job.id}/study.journal" in keys
        assert f"jobs/{job.id}/result.json" in keys
        assert f"models/{model.id}/manifest.json" in keys
        assert len([k for k in keys if k.startswith(f"models/{model.id}/")]) > 1
        predictions = [k for k in keys if k.startswith("predictions/")]
        assert predictions and all(k.endswith("/predictions.parquet") for k in predictions)
        assert not [k for k in keys if ".tmp-" in k]
        assert not (server.data_dir / "artifacts").exists()  # nothing went to local disk


def test_a_job_outlives_an_s3_restart(s3_server: S3Server, tmp_path: Path) -> None:
    """The server stops after the first TrialCompleted and comes back a few seconds later. The
    child's store gives up after TABSTREAM_S3_RETRY_S (1 s here), so the attempt is lost like a
    crash: JobInterrupted, then the next attempt resumes from the journal in the bucket and the
    job completes with each trial announced once."""
    own = OwnS3Server(
        S3Server(
            f"127.0.0.1:{free_port()}", s3_server.bucket, s3_server.access_key, s3_server.secret_key
        ),
        tmp_path / "s3-data",
    )
    own.start()
    try:
        extra = {"TABSTREAM_S3_RETRY_S": "1", "TABSTREAM_MAX_ATTEMPTS": "8"}
        with stack_on(own.server, tmp_path / "up", **extra) as (server, prefix):
            api = Client(server.url, server.token)
            dataset = api.upload_dataset(slower_frame(), name="restart")
            run = {"model_types": ["xgboost"], "n_trials": RESTART_TRIALS, "n_splits": 2}
            job = api.run(dataset.dataset_id, BinclassTask(label_column="y"), **run)
            deadline = time.monotonic() + 180
            events = job.events(deadline=deadline)
            first = next((e for e in events if e["type"] == "TrialCompleted"), None)
            assert first is not None, "no TrialCompleted within 180 s"
            own.stop()
            time.sleep(1)
            own.start()
            assert job.wait(timeout=360).status == "completed", job.info
            history = job.history()
            types = [e["type"] for e in history]
            assert "JobInterrupted" in types, types  # the outage hit the running attempt
            assert types[-1] == "JobCompleted" and types.count("JobCompleted") == 1
            assert history[-1]["attempt"] > first["attempt"]
            trials = [e["payload"] for e in history if e["type"] == "TrialCompleted"]
            assert len(trials) == RESTART_TRIALS
            assert len({(t["row"], t["trial"]) for t in trials}) == RESTART_TRIALS
            assert all(t["state"] == "complete" for t in trials)
            keys = bucket_keys(own.server, prefix)
            assert f"jobs/{job.id}/study.journal" in keys
            assert f"models/{job.best_model().id}/manifest.json" in keys
    finally:
        own.stop()
