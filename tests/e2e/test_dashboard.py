"""The dashboard in a real headless browser against a live `tabstream up`.

Sign in, upload a dataset, submit a run from the form, watch it go to completed live (no
reload), see the leaderboard and the optimisation-history chart; open a multi-metric run and
see its Pareto front; jobs and models pages; a narrow window; keyboard and labels.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import TOKEN, Stack, artifact

pytestmark = pytest.mark.browser
LABEL = "creditability"
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
RUN_TIMEOUT_MS = 60_000


def sign_in(page: Any) -> None:
    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Main").wait_for()


@pytest.fixture(scope="module")
def pareto_job(stack: Stack, dataset_file: Path) -> str:
    """A multi-metric run (auc + neg_class_error, grid 0.5, ensemble), submitted through the
    API at the start so it trains while the browser tests run."""
    with dataset_file.open("rb") as fh:
        r = stack.api.post(
            "/v1/datasets", files={"file": ("credit_g.parquet", fh)}, data={"name": "credit-api"}
        )
    assert r.status_code == 201, r.text
    body = {
        "dataset_id": r.json()["dataset_id"],
        "task": {"task_kind": "binclass", "label_column": LABEL},
        "model_types": ["xgboost"],
        "metrics": ["auc", "neg_class_error"],
        "grid_size": 0.5,
        "n_trials": 2,
        "n_splits": 2,
        "ensemble": True,
    }
    r = stack.api.post("/v1/trainer/run", json=body)
    assert r.status_code == 202, r.text
    return str(r.json()["job_id"])


def test_sign_in_submit_and_watch_live(
    page: Any, stack: Stack, dataset_file: Path, pareto_job: str
) -> None:
    # A wrong token is refused with a message; the right one opens the dashboard.
    page.get_by_label("API token").fill("not-a-valid-token-at-all")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").filter(has_text="Sign-in failed").wait_for()
    sign_in(page)
    # The static token was exchanged for a JWT; only that (and its refresh token) is kept.
    stored = page.evaluate("sessionStorage.getItem('tabstream.session')")
    assert TOKEN not in stored
    assert json.loads(stored)["access"].count(".") == 2

    # Upload the sample dataset through the form.
    page.get_by_role("link", name="Datasets").click()
    page.get_by_label("File (CSV or Parquet)").set_input_files(str(dataset_file))
    page.get_by_label("Name").fill("credit-ui")
    page.get_by_role("button", name="Upload").click()
    page.locator("#upload-result").get_by_text("Registered credit-ui").wait_for()
    page.locator("table.datasets").get_by_text("credit-ui", exact=True).wait_for()
    page.get_by_role("link", name="Train on credit-ui").click()

    # Submit a tiny run from the form.
    page.locator("#run-form").wait_for()
    assert "credit-ui" in page.locator("#run-dataset option:checked").inner_text()
    page.get_by_label("Task").select_option("binclass")
    page.get_by_label("Label column").select_option(LABEL)
    page.get_by_label("xgboost").check()
    page.get_by_label("Trials per model").fill("3")
    page.get_by_label("Cross-validation folds").fill("2")
    page.get_by_label("auc").check()
    # The page is the same document from here on: a reload would drop this marker.
    page.evaluate("window.__sameDocument = true")
    page.get_by_role("button", name="Start run").click()
    page.wait_for_url(re.compile(r"#/jobs/[0-9a-f-]{36}$"))
    job_id = page.url.rsplit("/", 1)[-1]
    page.locator("#progress-text").wait_for()

    # Record every progress text the page shows while the job runs.
    page.evaluate(
        """() => {
        window.__progress = [];
        const el = document.getElementById('progress-text');
        const seen = () => window.__progress.push(el.textContent);
        seen();
        const options = {childList: true, characterData: true, subtree: true};
        new MutationObserver(seen).observe(el, options);
    }"""
    )
    assert page.locator("#progress-text").get_attribute("aria-live") == "polite"
    page.locator("#progress-text").get_by_text(re.compile(r"^completed: 3 of 3 trials")).wait_for(
        timeout=RUN_TIMEOUT_MS
    )
    assert page.evaluate("window.__sameDocument") is True
    progress = page.evaluate("window.__progress")
    assert any(re.match(r"^(pending|running): [0-2] of", p) for p in progress), progress
    assert progress[-1].startswith("completed: 3 of 3 trials"), progress

    # Leaderboard, trials and the optimisation-history chart.
    page.locator("#leaderboard table tbody tr").first.wait_for()
    assert "xgboost" in page.locator("#leaderboard tbody").inner_text()
    assert page.locator("#trials tbody tr").count() == 3
    chart = page.locator("#history svg.chart").first
    assert chart.locator("circle.trial-point").count() == 3
    assert chart.locator("path.best-line").count() == 1
    assert page.locator("#timeline-list li").filter(has_text="JobCompleted").count() == 1
    assert page.locator("#stream-state").inner_text().startswith("The job is finished")
    assert page.locator("#pareto").is_hidden()
    page.screenshot(path=str(artifact("job-single.png")), full_page=True)

    # The API agrees with what the page showed.
    job = stack.api.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "completed"
    assert job["request"]["n_trials"] == 3 and job["request"]["n_splits"] == 2


def test_pareto_run_shows_its_front(page: Any, stack: Stack, pareto_job: str) -> None:
    sign_in(page)
    page.goto(f"{stack.url}/#/jobs/{pareto_job}")
    page.locator("#progress-text").get_by_text(re.compile(r"^completed")).wait_for(
        timeout=RUN_TIMEOUT_MS
    )
    front = page.locator("#pareto svg.chart")
    front.wait_for()
    points = front.locator("circle.pareto-point").count()
    job = stack.api.get(f"/v1/jobs/{pareto_job}").json()
    assert points == len(job["pareto_front"]) >= 1
    assert "auc" in (front.locator("title").first.text_content() or "")
    # One history chart per matrix row (three metric weightings), each with its trials.
    assert page.locator("#history figure").count() == len(job["leaderboard"]) == 3
    assert page.locator("#history circle.trial-point").count() == 6
    assert page.locator("#ensemble meter").count() == len(job["ensemble"]["members"])
    assert page.locator("#leaderboard tbody tr").count() == 3
    page.wait_for_timeout(100)
    shot = artifact("job-pareto.png")
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("TABSTREAM_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, DOCS_SCREENSHOT)


def test_jobs_models_narrow_window_and_keyboard(page: Any, stack: Stack, pareto_job: str) -> None:
    sign_in(page)
    # Jobs table with live statuses, linking to the job page.
    page.get_by_role("link", name=f"Job {pareto_job}").wait_for()
    row = page.locator("table.jobs tbody tr").filter(
        has=page.get_by_role("link", name=f"Job {pareto_job}")
    )
    row.locator(".badge").filter(has_text=re.compile("pending|running|completed")).wait_for()
    # Models registered by completed runs.
    page.get_by_role("link", name="Models").click()
    page.locator("table.models").wait_for()

    # Landmarks, labels, keyboard.
    assert page.get_by_role("main").count() == 1
    assert page.get_by_role("banner").count() == 1
    assert page.get_by_role("navigation", name="Main").count() == 1
    page.get_by_role("link", name="New run").first.click()
    page.locator("#run-form").wait_for()
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter(el => !el.labels?.length && !el.getAttribute('aria-label'))
            .filter(el => !el.getAttribute('aria-labelledby'))
            .map(el => el.id || el.name)"""
    )
    assert unlabelled == []
    # Keyboard: the skip link comes first and moves focus to the content; nav links work.
    page.goto(f"{stack.url}/#/jobs")
    page.reload()
    page.locator("table.jobs").wait_for()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    assert page.url.endswith("#/jobs")
    page.locator("#nav a[href='#/run']").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile("#/run$"))
    page.locator("#run-form").wait_for()

    # A phone-sized window: nothing overflows the page horizontally.
    page.set_viewport_size({"width": 375, "height": 800})
    for route in ("#/jobs", f"#/jobs/{pareto_job}", "#/run", "#/datasets", "#/models"):
        page.goto(f"{stack.url}/{route}")
        page.locator("main h1").first.wait_for()
        page.wait_for_timeout(150)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, (route, overflow)
    page.screenshot(path=str(artifact("narrow-job.png")), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    # Signing out forgets the session.
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("API token").wait_for()
    assert page.evaluate("sessionStorage.getItem('tabstream.session')") is None
