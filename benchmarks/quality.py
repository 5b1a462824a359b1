"""Quality benchmark: tabstream vs AutoGluon vs FLAML vs default xgboost at equal wall-clock
budgets.

``python -m benchmarks.quality [--budgets 60,300 | --budget S] [--datasets a,b] [--systems ..]
[--data DIR] [--seed N] [--out DIR]``

For each budget and each dataset of ``../shared/data`` (CARDS.json): one seeded 80/20 outer
split (stratified for classification); each system trains on the 80 % within the budget
(``--budgets``, else ``--budget``, else ``TABSTREAM_BENCH_BUDGET``, else 60 and 300 seconds) and
is scored on the 20 %: AUC (binclass), logloss (multiclass), RMSE (regression).

- tabstream: the real pipeline (``pipeline.train.run`` on a LocalArtifactStore in a temp dir, the
  train part registered as Parquet) with ``time_budget_s=budget`` and one request policy for
  every dataset (``tabstream_request``): the default model set, ``n_trials`` as a mere upper
  bound, 5 folds (the engine itself switches to a holdout where a 5-fold trial would cost too
  much of the budget: ``families.holdout_pays``), a Caruana ensemble. The winner bundle is
  loaded with ``load_bundle`` (digest checked) and predicts the test part.
- AutoGluon: ``TabularPredictor(...).fit(time_limit=budget, presets="medium_quality")`` on
  pandas frames (timestamps left for AutoGluon's own date features), in ``.venv-autogluon``
  (``benchmarks._autogluon_run``).
- FLAML: ``flaml.AutoML(time_budget=budget, metric, task, seed)`` on pandas frames (string
  columns as categories, timestamps left for FLAML's own date features), in ``.venv-flaml``
  (``benchmarks._flaml_run``).
- xgboost default: XGBClassifier / XGBRegressor with default parameters (hist, native
  categoricals, timestamps as epoch/hour/weekday/month), no budget.

Writes ``benchmarks/results/quality.json``, ``quality.md`` (one table per budget) and
``quality.png``, after each budget. Wall times are measured on a shared machine and are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import train_test_split

from benchmarks._quality_report import RIVALS, Run, markdown, panels, tally, winner
from benchmarks._report import RESULTS, bar_panels, machine, write

BUDGET_ENV = "TABSTREAM_BENCH_BUDGET"
DEFAULT_BUDGETS = "60,300"
FLAML_PYTHON_ENV = "TABSTREAM_FLAML_PYTHON"
AUTOGLUON_PYTHON_ENV = "TABSTREAM_AUTOGLUON_PYTHON"
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
METRIC = {"binclass": "auc", "multiclass": "logloss", "regression": "rmse"}
FLAML_METRIC = {"auc": "roc_auc", "logloss": "log_loss", "rmse": "rmse"}
SYSTEMS = ("tabstream", "autogluon", "flaml", "xgboost")


def parse(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__)
    p.add_argument("--budgets", default=None, help="comma-separated seconds, e.g. 60,300")
    p.add_argument("--budget", type=float, default=None, help="one budget (seconds)")
    p.add_argument("--datasets", default=None, help="comma-separated names (default: all)")
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--name", default="quality", help="result file stem")
    p.add_argument(
        "--update",
        action="store_true",
        help="keep the other datasets' and systems' records of an earlier <name>.json",
    )
    args = p.parse_args(argv)
    args.budgets = budgets(args.budgets, args.budget)
    return args


def budgets(listed: str | None, single: float | None) -> list[float]:
    """The budgets to run: ``--budgets``, else ``--budget``, else ``TABSTREAM_BENCH_BUDGET``
    (one or a comma-separated list), else 60 and 300 seconds."""
    if listed is None and single is not None:
        return [single]
    text = listed or os.environ.get(BUDGET_ENV) or DEFAULT_BUDGETS
    return [float(b) for b in text.split(",") if b.strip()]


# --- data --------------------------------------------------------------------------------------


def outer_split(table: pa.Table, label: str, kind: str, seed: int) -> tuple[pa.Table, pa.Table]:
    """Seeded 80/20 split, stratified for classification."""
    y = table.column(label).to_numpy(zero_copy_only=False)
    strat = y if kind != "regression" else None
    tr, te = train_test_split(
        np.arange(table.num_rows), test_size=0.2, random_state=seed, stratify=strat
    )
    return table.take(np.sort(tr)), table.take(np.sort(te))


def classes_of(table: pa.Table, label: str) -> list[Any]:
    """Sorted class values (the order tabstream uses too)."""
    return sorted(set(table.column(label).to_pylist()))


def test_score(metric: str, y: np.ndarray, raw: np.ndarray) -> float:
    """Test metric of raw predictions: (n, K) probabilities or (n,) values; y as codes/values."""
    if metric == "auc":
        return float(roc_auc_score(y, raw[:, 1]))
    if metric == "logloss":
        p = np.clip(raw, 1e-15, 1.0)
        p = p / p.sum(axis=1, keepdims=True)
        return float(log_loss(y, p, labels=list(range(raw.shape[1]))))
    return float(np.sqrt(np.mean((y - raw) ** 2)))


def targets(table: pa.Table, label: str, kind: str, classes: list[Any]) -> np.ndarray:
    """Class codes (classification) or float values (regression)."""
    values = table.column(label).to_pylist()
    if kind == "regression":
        return np.asarray(values, dtype=np.float64)
    index = {c: i for i, c in enumerate(classes)}
    return np.asarray([index[v] for v in values], dtype=np.int64)


def frames(
    train: pa.Table, test: pa.Table, label: str, dates: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pandas features: strings as categories (train's categories); timestamps kept
    (``dates="keep"``) or expanded to epoch/hour/weekday/month (``dates="parts"``)."""
    xtr = train.drop_columns([label]).to_pandas()
    xte = test.drop_columns([label]).to_pandas()
    for col in list(xtr.columns):
        series = xtr[col]
        if (
            pd.api.types.is_string_dtype(series)
            or pd.api.types.is_object_dtype(series)
            or pd.api.types.is_bool_dtype(series)
        ):
            cats = pd.Index(sorted(xtr[col].dropna().astype(str).unique()))
            xtr[col] = pd.Categorical(xtr[col].astype("string"), categories=cats)
            xte[col] = pd.Categorical(xte[col].astype("string"), categories=cats)
        elif pd.api.types.is_datetime64_any_dtype(xtr[col]) and dates == "parts":
            for frame in (xtr, xte):
                ts = frame.pop(col)
                frame[f"{col}__epoch"] = ts.astype("int64") / 1e9
                frame[f"{col}__hour"] = ts.dt.hour
                frame[f"{col}__dow"] = ts.dt.dayofweek
                frame[f"{col}__month"] = ts.dt.month
    return xtr, xte


# --- systems -----------------------------------------------------------------------------------


def tabstream_request(dataset_id: uuid.UUID, kind: str, label: str, seed: int) -> Any:
    """The one request policy used for every dataset (what a user would send)."""
    from tabstream.schemas.run import TrainerRunRequest

    return TrainerRunRequest.model_validate(
        {
            "dataset_id": str(dataset_id),
            "task": {"task_kind": kind, "label_column": label},
            "model_types": None,
            "n_trials": 1000,
            "n_splits": 5,
            "ensemble": True,
            "random_state": seed,
        }
    )


def run_tabstream(
    train: pa.Table, test: pa.Table, label: str, kind: str, budget: float, seed: int
) -> dict[str, Any]:
    """tabstream's real pipeline under ``time_budget_s`` (with the operator's pipeline
    settings, as a worker runs it); predicts test with the loaded bundle."""
    from tabstream.adapters.artifacts.local import LocalArtifactStore
    from tabstream.bootstrap.common import pipeline_options
    from tabstream.pipeline.finish.bundle import load_bundle
    from tabstream.pipeline.train import DatasetRef, run
    from tabstream.schemas.events import ModelRegistered, TrialCompleted
    from tabstream.settings import PipelineSettings

    options = pipeline_options(PipelineSettings())

    events: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="tabstream-bench-") as tmp:
        store = LocalArtifactStore(Path(tmp))
        dataset_id = uuid.uuid4()
        key = f"datasets/{dataset_id}.parquet"
        store.write_parquet(key, train)
        request = tabstream_request(dataset_id, kind, label, seed)
        start = time.monotonic()
        result = run(
            request,
            DatasetRef(dataset_id, key),
            store,
            events.append,
            "cpu",
            job_id=uuid.uuid4(),
            time_budget_s=budget,
            options=options,
        )
        fit_s = time.monotonic() - start
        registered = {e.model_id: e for e in events if isinstance(e, ModelRegistered)}
        assert result.best_model_id is not None, "tabstream registered no model"
        best = registered[result.best_model_id]
        model = load_bundle(store, str(best.model_id), best.sha256, options.families)
        start = time.monotonic()
        raw = model.predict_raw(test.drop_columns([label]))
        predict_s = time.monotonic() - start
    trials = [e for e in events if isinstance(e, TrialCompleted)]
    ens = result.ensemble
    return {
        "raw": raw,
        "classes": list(model.spec.classes) if model.spec.classes is not None else None,
        "fit_s": fit_s,
        "predict_s": predict_s,
        "model_types": result.model_types,
        "trials": dict(Counter(e.family for e in trials)),
        "failed_trials": sum(e.state == "failed" for e in trials),
        "leaderboard": [{"family": e.family, "score": e.score} for e in result.leaderboard],
        "ensemble": (
            [{"family": m.family, "trial": m.trial, "weight": m.weight} for m in ens.members]
            if ens is not None
            else None
        ),
        "notes": result.notes,
        "cv_score": best.metrics.get(METRIC[kind]),
    }


def venv_python(env: str, venv: str) -> str:
    """The interpreter a baseline runs in: the ``env`` variable, else ``<repo>/<venv>`` (made by
    ``make bench``), else this one."""
    own = ROOT / venv / "bin" / "python"
    return os.environ.get(env) or (str(own) if own.exists() else sys.executable)


def flaml_python() -> str:
    """FLAML's interpreter: ``TABSTREAM_FLAML_PYTHON``, else ``.venv-flaml`` (FLAML pins
    xgboost<3, so it must not share tabstream's venv)."""
    return venv_python(FLAML_PYTHON_ENV, ".venv-flaml")


def autogluon_python() -> str:
    """AutoGluon's interpreter: ``TABSTREAM_AUTOGLUON_PYTHON``, else ``.venv-autogluon``
    (AutoGluon pins its own numpy/pandas/xgboost/torch ranges)."""
    return venv_python(AUTOGLUON_PYTHON_ENV, ".venv-autogluon")


def run_in_venv(
    python: str, module: str, train: pa.Table, test: pa.Table, job: dict[str, Any]
) -> dict[str, Any]:
    """``python -m module DIR`` on a folder of train/test Parquet and ``job.json``; returns its
    ``result.json`` with ``raw`` (its ``raw.npy``) added."""
    with tempfile.TemporaryDirectory(prefix="quality-bench-") as tmp:
        d = Path(tmp)
        pq.write_table(train, d / "train.parquet")
        pq.write_table(test, d / "test.parquet")
        (d / "job.json").write_text(json.dumps(job))
        subprocess.run([python, "-m", module, str(d)], cwd=ROOT, check=True)
        result: dict[str, Any] = json.loads((d / "result.json").read_text())
        result["raw"] = np.load(d / "raw.npy")
    return result


def run_flaml(
    train: pa.Table, test: pa.Table, label: str, kind: str, budget: float, seed: int
) -> dict[str, Any]:
    """FLAML AutoML at the same budget, in its own interpreter (``benchmarks._flaml_run``)."""
    job = {"label": label, "kind": kind, "budget": budget, "seed": seed}
    return run_in_venv(flaml_python(), "benchmarks._flaml_run", train, test, job)


def run_autogluon(
    train: pa.Table, test: pa.Table, label: str, kind: str, budget: float, seed: int
) -> dict[str, Any]:
    """AutoGluon (medium preset) at the same budget, in its own interpreter
    (``benchmarks._autogluon_run``)."""
    job = {"label": label, "kind": kind, "budget": budget, "seed": seed}
    return run_in_venv(autogluon_python(), "benchmarks._autogluon_run", train, test, job)


def run_xgboost(
    train: pa.Table, test: pa.Table, label: str, kind: str, budget: float, seed: int
) -> dict[str, Any]:
    """xgboost with default parameters (hist, native categoricals)."""
    import xgboost as xgb

    xtr, xte = frames(train, test, label, dates="parts")
    if kind == "regression":
        model: Any = xgb.XGBRegressor(
            tree_method="hist", enable_categorical=True, random_state=seed
        )
        y = np.asarray(train.column(label).to_pylist(), dtype=np.float64)
    else:
        model = xgb.XGBClassifier(tree_method="hist", enable_categorical=True, random_state=seed)
        y = targets(train, label, kind, classes_of(train, label))
    start = time.monotonic()
    model.fit(xtr, y)
    fit_s = time.monotonic() - start
    raw = model.predict(xte) if kind == "regression" else model.predict_proba(xte)
    return {
        "raw": np.asarray(raw, dtype=np.float64),
        "classes": classes_of(train, label) if kind != "regression" else None,
        "fit_s": fit_s,
        "predict_s": 0.0,
    }


RUNNERS = {
    "tabstream": run_tabstream,
    "autogluon": run_autogluon,
    "flaml": run_flaml,
    "xgboost": run_xgboost,
}


def align(raw: np.ndarray, got: list[Any] | None, classes: list[Any]) -> np.ndarray:
    """Reorder probability columns from the system's class order ``got`` to ``classes``."""
    if got is None:
        return raw
    pos = {str(c): i for i, c in enumerate(got)}
    out = np.zeros((raw.shape[0], len(classes)))
    for j, c in enumerate(classes):
        if str(c) in pos:
            out[:, j] = raw[:, pos[str(c)]]
    return out


# --- driver ------------------------------------------------------------------------------------


def bench_dataset(
    name: str, card: dict[str, Any], args: argparse.Namespace, systems: list[str], budget: float
) -> dict[str, Any]:
    """All systems on one dataset at one budget; returns its result record."""
    label, kind = card["label"], card["task"]
    metric = METRIC[kind]
    table = pq.read_table(args.data / card["file"])
    train, test = outer_split(table, label, kind, args.seed)
    classes = classes_of(table, label) if kind != "regression" else []
    y_test = targets(test, label, kind, classes)
    record: dict[str, Any] = {
        "dataset": name,
        "task": kind,
        "metric": metric,
        "rows": table.num_rows,
        "train_rows": train.num_rows,
        "test_rows": test.num_rows,
        "systems": {},
    }
    for system in systems:
        print(f"  {name}: {system} ...", flush=True)
        try:
            out = RUNNERS[system](train, test, label, kind, budget, args.seed)
        except Exception as exc:  # a failing system is reported, the benchmark goes on
            record["systems"][system] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"  {name}: {system} failed: {exc}", flush=True)
            continue
        raw = out.pop("raw")
        raw = align(raw, out.pop("classes"), classes) if kind != "regression" else raw
        out["score"] = test_score(metric, y_test, raw)
        out["run_at"] = _now()
        record["systems"][system] = out
        print(f"  {name}: {system} {metric}={out['score']:.5f} fit {out['fit_s']:.1f}s", flush=True)
    record["winner"] = winner(record)
    return record


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def earlier_runs(args: argparse.Namespace) -> dict[float, list[dict[str, Any]]]:
    """The records of an earlier ``<name>.json`` by budget (a file of one budget, from before
    ``--budgets``, holds ``budget_s`` and ``datasets`` at its top)."""
    path = args.out / f"{args.name}.json"
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {float(r["budget_s"]): r["datasets"] for r in data.get("runs", [data])}


def merged(
    old: list[dict[str, Any]], order: list[str], fresh: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Earlier records with the ``fresh`` systems replacing theirs, in CARDS order
    (``--update``): rerunning one system keeps the other systems' results of that dataset."""
    by_name = {r["dataset"]: r for r in old}
    for name, record in fresh.items():
        systems = by_name.get(name, {}).get("systems", {}) | record["systems"]
        by_name[name] = record | {"systems": systems}
        by_name[name]["winner"] = winner(by_name[name])
    return [by_name[n] for n in order if n in by_name]


def write_results(args: argparse.Namespace, runs: list[Run]) -> tuple[Path, Path, Path]:
    """Write ``<name>.json``, ``.md`` and ``.png`` for the runs so far."""
    data = {
        "seed": args.seed,
        "machine": machine(),
        "runs": [
            {"budget_s": budget, "datasets": records}
            | {f"tabstream_vs_{rival}": tally(records, rival) for rival in RIVALS}
            for budget, records in runs
        ],
    }
    js, md = write(args.out, args.name, data, markdown(runs, args.seed))
    png = bar_panels(args.out / f"{args.name}.png", panels(runs), "test metric per budget")
    return js, md, png


def main(argv: list[str]) -> int:
    """Run the benchmark at every budget and write results after each."""
    args = parse(argv)
    cards = json.loads((args.data / "CARDS.json").read_text())
    names = args.datasets.split(",") if args.datasets else list(cards)
    systems = [s for s in args.systems.split(",") if s]
    old = earlier_runs(args) if args.update else {}
    done: dict[float, list[dict[str, Any]]] = {}
    for budget in args.budgets:
        fresh = {}
        for name in names:
            print(f"== {name} (budget {budget:g} s)", flush=True)
            record = bench_dataset(name, cards[name], args, systems, budget)
            fresh[name] = record | {"run_at": _now()}
        done[budget] = merged(old.get(budget, []), list(cards), fresh)
        runs = sorted((old | done).items())
        js, md, png = write_results(args, runs)
    print(md.read_text())
    print(f"wrote {js}, {md}, {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
