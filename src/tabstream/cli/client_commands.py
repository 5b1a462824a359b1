"""Client commands of the CLI (``datasets``, ``run``, ``jobs``, ``watch``, ``cancel``,
``predict``) against a running server, through the SDK.

Exit codes: 0 ok; 1 the server refused the request or the job failed/was cancelled;
2 a usage error (bad filter, bad file, invalid request); 3 the server is unreachable.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from tabstream.client import ApiError, Client, JobFailed
from tabstream.client.filter_parser import FilterSyntaxError, parse_filter

URL = typer.Option("http://127.0.0.1:8000", "--url", envvar="TABSTREAM_URL", help="API base URL")
TOKEN = typer.Option(None, "--token", envvar="TABSTREAM_TOKEN", help="API token (Bearer)")
JSON = typer.Option(False, "--json", help="machine-readable JSON on stdout")
TASKS = [
    "regression",
    "binclass",
    "multiclass",
    "forecasting",
    "sequence_regression",
    "sequence_binclass",
    "sequence_multiclass",
]
DATA_FILE = typer.Argument(..., help="CSV or Parquet file", exists=False)
MODELS = typer.Option(None, "--models", help="families (comma list or repeated)")
METRICS = typer.Option(None, "--metrics", help="metrics (comma list or repeated)")
OUTPUT = typer.Option(None, "-o", "--output", help="write CSV/Parquet here (default: stdout)")
out = Console()
err = Console(stderr=True)


@contextlib.contextmanager
def client_errors() -> Iterator[None]:
    """Turn user-facing errors into a message on stderr and an exit code (no traceback)."""
    try:
        yield
    except ApiError as exc:
        err.print(f"[red]error:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(3 if exc.status == 0 else 1) from None
    except JobFailed as exc:
        err.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(1) from None
    except (FilterSyntaxError, FileNotFoundError, IsADirectoryError) as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except ValidationError as exc:
        for e in exc.errors():
            loc = ".".join(str(p) for p in e["loc"])
            err.print(f"[red]invalid request:[/] {loc}: {e['msg']}", highlight=False)
        raise typer.Exit(2) from None
    except TimeoutError as exc:
        err.print(f"[red]timeout:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None


def connect(url: str, token: str | None) -> Client:
    """An SDK client with short retries (a CLI user should not wait long on a dead server)."""
    return Client(url, token, retries=2, backoff_s=0.25)


def emit_json(value: Any) -> None:
    """Print ``value`` as JSON on stdout."""
    sys.stdout.write(json.dumps(value, default=str) + "\n")


# -- datasets ----------------------------------------------------------------------------------

datasets_app = typer.Typer(help="Register and list datasets.", no_args_is_help=True)


@datasets_app.command("add")
def datasets_add(
    file: Path = DATA_FILE,
    name: str | None = typer.Option(None, help="dataset name (default: the file name)"),
    url: str = URL,
    token: str | None = TOKEN,
    as_json: bool = JSON,
) -> None:
    """Upload a CSV/Parquet file as a dataset."""
    with client_errors(), connect(url, token) as api:
        if not file.is_file():
            raise FileNotFoundError(f"no such file: {file}")
        info = api.upload_dataset(file, name=name).model_dump(mode="json")
        if as_json:
            emit_json(info)
            return
        out.print(
            f"dataset [cyan]{info['dataset_id']}[/] {info['name']}: {info['rows']} rows, "
            f"{len(info['columns'])} columns"
        )


@datasets_app.command("list")
def datasets_list(
    limit: int = typer.Option(50, min=1, max=500),
    url: str = URL,
    token: str | None = TOKEN,
    as_json: bool = JSON,
) -> None:
    """List your datasets."""
    with client_errors(), connect(url, token) as api:
        items = [d.model_dump(mode="json") for d in api.datasets(limit)]
    if as_json:
        emit_json(items)
        return
    table = Table("dataset_id", "name", "rows", "columns", "created_at")
    for d in items:
        table.add_row(
            d["dataset_id"],
            d["name"],
            str(d["rows"]),
            str(len(d["columns"])),
            str(d.get("created_at") or ""),
        )
    out.print(table)


# -- run ---------------------------------------------------------------------------------------


def _task(kind: str | None, label: str, extra: dict[str, Any]) -> dict[str, Any]:
    if kind is None:
        raise typer.BadParameter("give --task (" + ", ".join(TASKS) + ")", param_hint="--task")
    if kind not in TASKS:
        raise typer.BadParameter(f"{kind!r} is not one of {', '.join(TASKS)}", param_hint="--task")
    return {"task_kind": kind, "label_column": label, **{k: v for k, v in extra.items() if v}}


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def run_command(
    dataset: str = typer.Option(..., "--dataset", help="dataset id"),
    label: str = typer.Option(..., "--label", help="label column"),
    task: str | None = typer.Option(None, "--task", help="task kind: " + ", ".join(TASKS)),
    models: list[str] | None = MODELS,
    metrics: list[str] | None = METRICS,
    trials: int | None = typer.Option(None, "--trials", min=1, help="trials per matrix row"),
    folds: int | None = typer.Option(None, "--folds", min=2, help="K-fold splits"),
    ensemble: bool = typer.Option(False, "--ensemble", help="Caruana ensemble"),
    filter_expr: str | None = typer.Option(None, "--filter", help='e.g. col("ts") >= "2011-06"'),
    strategy: str | None = typer.Option(None, "--strategy", help="optuna or random"),
    grid_size: float | None = typer.Option(None, "--grid-size", help="Pareto weight step"),
    seed: int | None = typer.Option(None, "--seed", help="random_state"),
    time_limit: float | None = typer.Option(
        None, "--time-limit", help="seconds the whole job may take (n_trials becomes a cap)"
    ),
    id_column: str | None = typer.Option(None, "--id-column", help="series id (sequence)"),
    ts_column: str | None = typer.Option(None, "--timestamp-column", help="time (sequence)"),
    horizon: int | None = typer.Option(None, "--horizon", help="forecast horizon"),
    wait: bool = typer.Option(False, "--wait", help="watch until the job ends"),
    url: str = URL,
    token: str | None = TOKEN,
    as_json: bool = JSON,
) -> None:
    """Submit a TrainerRun on a dataset (``--wait`` watches it to the end)."""
    extra = {"id_column": id_column, "timestamp_column": ts_column, "horizon": horizon}
    with client_errors(), connect(url, token) as api:
        fields: dict[str, Any] = {
            "model_types": _split(models),
            "metrics": _split(metrics),
            "n_trials": trials,
            "n_splits": folds,
            "ensemble": ensemble or None,
            "filter": parse_filter(filter_expr) if filter_expr else None,
            "strategy": strategy,
            "grid_size": grid_size,
            "random_state": seed,
            "time_budget_s": time_limit,
        }
        given = {k: v for k, v in fields.items() if v is not None}
        job = api.run(dataset, _task(task, label, extra), **given)
        if as_json and not wait:
            emit_json(job.refresh())
            return
        if not as_json:
            out.print(f"job [cyan]{job.id}[/] submitted")
        if wait:
            _finish(job, as_json)


def _finish(job: Any, as_json: bool) -> None:
    from tabstream.cli.watch import watch

    if as_json:
        job.wait()
        emit_json(job.info)
        return
    final = watch(job, out)
    if final.get("status") != "completed":
        raise typer.Exit(1)


# -- jobs, watch, cancel -----------------------------------------------------------------------

jobs_app = typer.Typer(help="List and inspect jobs.", no_args_is_help=True)


@jobs_app.command("list")
def jobs_list(
    status: str | None = typer.Option(None, help="pending, running, completed, failed, ..."),
    limit: int = typer.Option(50, min=1, max=500),
    url: str = URL,
    token: str | None = TOKEN,
    as_json: bool = JSON,
) -> None:
    """List your jobs, newest first."""
    with client_errors(), connect(url, token) as api:
        items = api.jobs(status=status, limit=limit)
    if as_json:
        emit_json(items)
        return
    table = Table("job_id", "status", "progress", "models", "created_at")
    for j in items:
        p = j.get("progress") or {}
        done = f"{p.get('trials_done', 0)}/{p.get('trials_total') or '?'}"
        table.add_row(
            j["job_id"],
            j["status"],
            done,
            ",".join(j.get("model_types") or []),
            str(j.get("created_at") or ""),
        )
    out.print(table)


@jobs_app.command("show")
def jobs_show(
    job_id: str = typer.Argument(..., help="job id"),
    url: str = URL,
    token: str | None = TOKEN,
    as_json: bool = JSON,
) -> None:
    """Show one job: status, attempts, progress and leaderboard."""
    from tabstream.cli.watch import print_outcome

    with client_errors(), connect(url, token) as api:
        info = api.job(job_id).info
    if as_json:
        emit_json(info)
        return
    p = info.get("progress") or {}
    trials = f"{p.get('trials_done', 0)}/{p.get('trials_total') or '?'}"
    attempts = len(info.get("attempts") or [])
    out.print(
        f"job [cyan]{info['job_id']}[/]  status [bold]{info['status']}[/]  "
        f"pool {info.get('pool')}  trials {trials}  attempts {attempts}"
    )
    if info["status"] in ("completed", "failed", "cancelled"):
        print_outcome(out, info)


def watch_command(
    job_id: str = typer.Argument(..., help="job id"),
    url: str = URL,
    token: str | None = TOKEN,
    as_json: bool = typer.Option(False, "--json", help="print each event as a JSON line"),
) -> None:
    """Follow a job live (SSE): trials per row, best score, ETA; then the leaderboard."""
    from tabstream.cli.watch import stream, watch

    with client_errors(), connect(url, token) as api:
        job = api.job(job_id)
        if as_json:
            for env in stream(job):
                emit_json(env)
            status = job.refresh()["status"]
        else:
            status = watch(job, out)["status"]
    if status != "completed":
        raise typer.Exit(1)


def cancel_command(
    job_id: str = typer.Argument(..., help="job id"),
    url: str = URL,
    token: str | None = TOKEN,
    as_json: bool = JSON,
) -> None:
    """Ask the workers to cancel a job."""
    with client_errors(), connect(url, token) as api:
        answer = api.job(job_id).cancel()
    if as_json:
        emit_json(answer)
    else:
        out.print(f"job {answer['job_id']}: {answer['message']}")


def predict_command(
    model_id: str = typer.Argument(..., help="model id"),
    file: Path = DATA_FILE,
    output: Path | None = OUTPUT,
    url: str = URL,
    token: str | None = TOKEN,
    as_json: bool = JSON,
) -> None:
    """Predict a CSV/Parquet file with a registered model (CSV on stdout by default)."""
    with client_errors(), connect(url, token) as api:
        if not file.is_file():
            raise FileNotFoundError(f"no such file: {file}")
        got = api.model(model_id).predict(file)
    if as_json:
        emit_json(got.__dict__)
        return
    frame = got.to_frame()
    if output is None:
        sys.stdout.write(frame.to_csv(index=False))
    elif output.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(output, index=False)
    else:
        frame.to_csv(output, index=False)


def register(app: typer.Typer) -> None:
    """Add the client commands to the main ``tabstream`` app."""
    app.add_typer(datasets_app, name="datasets")
    app.add_typer(jobs_app, name="jobs")
    app.command("run")(run_command)
    app.command("watch")(watch_command)
    app.command("cancel")(cancel_command)
    app.command("predict")(predict_command)
