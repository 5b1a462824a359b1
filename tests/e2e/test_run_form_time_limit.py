"""The run form's "Time limit (s)" field sends ``time_budget_s`` when filled (headless browser
against a live `tabstream up`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import TOKEN, Stack

pytestmark = pytest.mark.browser
LABEL = "creditability"


def submit_run(page: Any, stack: Stack, dataset_id: str, time_limit: str) -> dict[str, Any]:
    """Fill the form for a tiny run with ``time_limit`` (empty: untouched); the job's request."""
    page.goto(f"{stack.url}/#/run?dataset={dataset_id}")
    page.locator("#run-form").wait_for()
    page.get_by_label("Task").select_option("binclass")
    page.get_by_label("Label column").select_option(LABEL)
    page.get_by_label("Trials per model").fill("1")
    page.get_by_label("Cross-validation folds").fill("2")
    if time_limit:
        page.get_by_label("Time limit (s)").fill(time_limit)
    page.get_by_role("button", name="Start run").click()
    page.wait_for_url(re.compile(r"#/jobs/[0-9a-f-]{36}$"))
    job_id = page.url.rsplit("/", 1)[-1]
    request: dict[str, Any] = stack.api.get(f"/v1/jobs/{job_id}").json()["request"]
    return request


def test_time_limit_field_sends_time_budget_s(page: Any, stack: Stack, dataset_file: Path) -> None:
    with dataset_file.open("rb") as fh:
        r = stack.api.post("/v1/datasets", files={"file": ("c.parquet", fh)}, data={"name": "tl"})
    assert r.status_code == 201, r.text
    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Main").wait_for()
    dataset_id = r.json()["dataset_id"]
    assert submit_run(page, stack, dataset_id, "120")["time_budget_s"] == 120.0
    assert submit_run(page, stack, dataset_id, "")["time_budget_s"] is None
