"""/metrics after a real run on the embedded stack, the separate metrics port, and JSON logs."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tabstream.client import ApiError, Client
from tests.client.conftest import TINY_RUN, Server, free_port, start_server, stop, tiny_frame

pytestmark = pytest.mark.slow


Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(url: str) -> Samples:
    """{sample name: [(labels, value)]} of a Prometheus scrape."""
    text = httpx.get(url, timeout=10).text
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def total(
    samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float:
    rows = samples.get(name, [])
    return sum(v for lab, v in rows if all(lab.get(k) == w for k, w in labels.items()))


def test_metrics_after_a_run(server: Server) -> None:
    api = Client(server.url, server.token)
    dataset = api.upload_dataset(tiny_frame(rows=80), name="metrics")
    api.run(dataset.dataset_id, {"task_kind": "binclass", "label_column": "y"}, **TINY_RUN).wait(
        timeout=120
    )
    with pytest.raises(ApiError):
        api.run(dataset.dataset_id, {"task_kind": "binclass", "label_column": "missing"})
    got = scrape(f"{server.url}/metrics")
    assert total(got, "tabstream_runs_submitted_total") >= 2
    assert total(got, "tabstream_runs_accepted_total") >= 1
    assert total(got, "tabstream_runs_rejected_total", reason="invalid") >= 1
    assert total(got, "tabstream_jobs", status="completed") >= 1
    trial = {"family": "xgboost", "device": "cpu"}
    assert total(got, "tabstream_trial_duration_seconds_count", **trial) >= 2
    assert total(got, "tabstream_trial_duration_seconds_sum", **trial) > 0
    assert total(got, "tabstream_job_duration_seconds_count", family="xgboost") >= 1
    assert total(got, "tabstream_job_duration_seconds_sum") > 0
    lag = got["tabstream_consumer_lag_records"]
    assert {lab["topic"] for lab, _ in lag} >= {"tabstream.events", "tabstream.commands.cpu"}
    assert "tabstream_projection_lag_records" in got
    assert total(got, "tabstream_projection_events_total", type="TrialCompleted") >= 2


def test_json_logs_carry_request_and_record_context(server: Server) -> None:
    response = httpx.get(
        f"{server.url}/v1/jobs", headers={"Authorization": f"Bearer {server.token}",
                                          "X-Request-ID": "req-123"}
    )  # fmt: skip
    assert response.headers["x-request-id"] == "req-123"
    assert httpx.get(f"{server.url}/healthz").headers["x-request-id"]
    lines = [json.loads(x) for x in server.log_path.read_text().splitlines() if x.startswith("{")]
    assert lines, "no JSON log lines"
    keys = set().union(*(line.keys() for line in lines))
    assert {"job_id", "topic", "partition", "offset", "attempt"} <= keys, keys
    assert server.token not in server.log_path.read_text()


def test_metrics_on_a_separate_port(tmp_path: Path) -> None:
    port = free_port()
    running, proc = start_server(tmp_path, {"TABSTREAM_METRICS_PORT": str(port)})
    try:
        assert httpx.get(f"{running.url}/metrics").status_code == 404
        got = scrape(f"http://127.0.0.1:{port}/metrics")
        assert "tabstream_runs_submitted_total" in got and "tabstream_jobs" in got
        assert httpx.get(f"http://127.0.0.1:{port}/other").status_code == 404
    finally:
        stop(proc)
