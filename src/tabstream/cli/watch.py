"""``tabstream watch``: a live progress view of a job from its SSE stream, then the leaderboard."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from tabstream.client import Job
from tabstream.client.io_helpers import TERMINAL_EVENTS

GREATER_IS_BETTER = frozenset({"auc", "accuracy", "neg_class_error", "f1", "r2"})
DEFAULT_METRIC = {"binclass": "auc", "multiclass": "logloss", "sequence_binclass": "auc"}
RECONNECTS = 5


def first_metric(request: dict[str, Any] | None) -> str:
    """The metric ``score`` is the mean of: the request's first, or the task's default."""
    request = request or {}
    metrics = request.get("metrics") or []
    if metrics:
        return str(metrics[0])
    kind = (request.get("task") or {}).get("task_kind", "regression")
    return DEFAULT_METRIC.get(kind, "logloss" if "multiclass" in kind else "rmse")


class Watch:
    """Progress state: an overall bar plus one bar per matrix row, with the best score."""

    def __init__(self, progress: Progress, info: dict[str, Any]) -> None:
        self.progress = progress
        request = info.get("request") or {}
        self.metric = first_metric(request)
        self.higher = self.metric in GREATER_IS_BETTER
        self.per_row = int(request.get("n_trials") or 1)
        self.total = progress.add_task("queued", total=None, best="")
        self.rows: dict[int, TaskID] = {}
        self.best: dict[int, float] = {}

    def better(self, new: float, old: float | None) -> bool:
        return old is None or (new > old if self.higher else new < old)

    def apply(self, env: dict[str, Any]) -> bool:
        """Update the bars for one envelope; True on the terminal event."""
        kind, p = env.get("type"), env.get("payload") or {}
        if kind == "JobStarted":
            total = p.get("trials_total") or None
            desc = f"attempt {env.get('attempt', 1)} on {p.get('device')}"
            self.progress.update(self.total, description=desc, total=total)
        elif kind == "TrialCompleted":
            self._trial(p)
        elif kind == "JobInterrupted":
            self.progress.update(self.total, description="attempt lost; resuming")
        elif kind in TERMINAL_EVENTS:
            self.progress.update(self.total, description=str(kind))
            return True
        return False

    def _trial(self, p: dict[str, Any]) -> None:
        row = int(p.get("row", 0))
        if row not in self.rows:
            label = f"  row {row} {p.get('family')}"
            self.rows[row] = self.progress.add_task(label, total=self.per_row, best="")
        score = p.get("score")
        if isinstance(score, int | float) and self.better(score, self.best.get(row)):
            self.best[row] = float(score)
            self.progress.update(self.rows[row], best=f"best {self.metric}={score:.4f}")
            overall = max(self.best.values()) if self.higher else min(self.best.values())
            self.progress.update(self.total, best=f"best {self.metric}={overall:.4f}")
        self.progress.advance(self.rows[row])
        self.progress.advance(self.total)


def make_progress(console: Console) -> Progress:
    """The progress display: description, bar, done/total, best score, elapsed, ETA."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[best]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
    )


def stream(job: Job) -> Iterator[dict[str, Any]]:
    """The job's envelopes over SSE from the start, reconnecting where it stopped."""
    seen = 0
    for attempt in range(RECONNECTS + 1):
        try:
            for env in job.events(after=seen):
                seen += 1
                yield env
                if env.get("type") in TERMINAL_EVENTS:
                    return
            return
        except httpx.HTTPError:
            if attempt == RECONNECTS:
                raise
            time.sleep(min(2.0**attempt, 10.0))


def watch(job: Job, console: Console) -> dict[str, Any]:
    """Show live progress until the terminal event; print and return the final job."""
    info = job.refresh()
    with make_progress(console) as progress:
        state = Watch(progress, info)
        for env in stream(job):
            if state.apply(env):
                break
    final = job.refresh()
    print_outcome(console, final)
    return final


def print_outcome(console: Console, job: dict[str, Any]) -> None:
    """The leaderboard of a completed job, or its error."""
    status = job.get("status")
    if status != "completed":
        error = job.get("error")
        if isinstance(error, dict):
            error = f"{error.get('reason')}: {error.get('message')}"
        console.print(f"[red]job {status}[/]: {error or job.get('cancel_reason') or ''}")
        return
    console.print(leaderboard_table(job))
    if job.get("best_model_id"):
        console.print(f"best model: [bold green]{job['best_model_id']}[/]")


def leaderboard_table(job: dict[str, Any]) -> Table:
    """A rich table of the job's leaderboard."""
    table = Table(title=f"leaderboard of {job.get('job_id')}")
    for name in ("row", "family", "score", "metrics", "model_id"):
        table.add_column(name)
    for entry in job.get("leaderboard") or []:
        metrics = ", ".join(f"{k}={v:.4f}" for k, v in (entry.get("metrics") or {}).items())
        score = entry.get("score")
        table.add_row(
            str(entry.get("row")),
            str(entry.get("family")),
            "-" if score is None else f"{score:.4f}",
            metrics,
            str(entry.get("model_id") or "-"),
        )
    return table
