"""Quality benchmark: tabstream vs FLAML vs default xgboost at an equal wall-clock budget.

``python -m benchmarks.quality [--budget S] [--datasets a,b] [--data DIR] [--seed N]``

For each dataset of ``../shared/data`` (CARDS.json): one seeded 80/20 outer split (stratified
for classification); each system trains on the 80 % within ``--budget`` seconds (default 120,
or ``TABSTREAM_BENCH_BUDGET``) and is scored on the 20 %: AUC (binclass), logloss
(multiclass), RMSE (regression).

- tabstream: the real pipeline (``pipeline.train.run`` on a LocalArtifactStore in a temp dir, the
  train part registered as Parquet) with ``time_budget_s=budget`` and one request policy for
  every dataset (``tabstream_request``): the default model set, ``n_trials`` as a mere upper
  bound, 5 folds up to 10k rows else a holdout, a Caruana ensemble. The winner bundle is loaded
  with ``load_bundle`` (digest checked) and predicts the test part.
- FLAML: ``flaml.AutoML(time_budget=budget, metric, task, seed)`` on pandas frames (string
  columns as categories, timestamps left for FLAML's own date features).
- xgboost default: XGBClassifier / XGBRegressor with default parameters (hist, native
  categoricals, timestamps as epoch/hour/weekday/month), no budget.

Writes ``benchmarks/results/quality.json``, ``quality.md`` and ``quality.png``. Wall times are
measured on a shared machine and are noisy.
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

from benchmarks._report import RESULTS, bar_panels, machine, md_table, write

BUDGET_ENV = "TABSTREAM_BENCH_BUDGET"
FLAML_PYTHON_ENV = "TABSTREAM_FLAML_PYTHON"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
METRIC = {"binclass": "auc", "multiclass": "logloss", "regression": "rmse"}
GREATER = {"auc": True, "logloss": False, "rmse": False}
FLAML_METRIC = {"auc": "roc_auc", "logloss": "log_loss", "rmse": "rmse"}
SYSTEMS = ("tabstream", "flaml", "xgboost")
KFOLD_MAX_ROWS = 10_000


def parse(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__)
    p.add_argument("--budget", type=float, default=float(os.environ.get(BUDGET_ENV, 120)))
    p.add_argument("--datasets", default=None, help="comma-separated names (default: all)")
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--name", default="quality", help="result file stem")
    p.add_argument(
        "--update",
        action="store_true",
        help="keep the other datasets' records of an earlier <name>.json (rerun a few)",
    )
    return p.parse_args(argv)


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


def tabstream_request(dataset_id: uuid.UUID, kind: str, label: str, n_rows: int, seed: int) -> Any:
    """The one request policy used for every dataset (what a user would send)."""
    from tabstream.schemas.run import TrainerRunRequest

    return TrainerRunRequest.model_validate(
        {
            "dataset_id": str(dataset_id),
            "task": {"task_kind": kind, "label_column": label},
            "model_types": None,
            "n_trials": 1000,
            "n_splits": 5 if n_rows <= KFOLD_MAX_ROWS else None,
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
        request = tabstream_request(dataset_id, kind, label, train.num_rows, seed)
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


def flaml_python() -> str:
    """The interpreter FLAML runs in: ``TABSTREAM_FLAML_PYTHON``, else ``.venv-flaml`` (made by
    ``make bench``; FLAML pins xgboost<3, so it must not share tabstream's venv), else this one."""
    own = Path(__file__).resolve().parents[1] / ".venv-flaml" / "bin" / "python"
    return os.environ.get(FLAML_PYTHON_ENV) or (str(own) if own.exists() else sys.executable)


def run_flaml(
    train: pa.Table, test: pa.Table, label: str, kind: str, budget: float, seed: int
) -> dict[str, Any]:
    """FLAML AutoML at the same budget, in its own interpreter (``benchmarks._flaml_run``)."""
    with tempfile.TemporaryDirectory(prefix="flaml-bench-") as tmp:
        d = Path(tmp)
        pq.write_table(train, d / "train.parquet")
        pq.write_table(test, d / "test.parquet")
        job = {"label": label, "kind": kind, "budget": budget, "seed": seed}
        (d / "job.json").write_text(json.dumps(job))
        root = Path(__file__).resolve().parents[1]
        cmd = [flaml_python(), "-m", "benchmarks._flaml_run", str(d)]
        subprocess.run(cmd, cwd=root, check=True)
        result: dict[str, Any] = json.loads((d / "result.json").read_text())
        result["raw"] = np.load(d / "raw.npy")
    return result


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


RUNNERS = {"tabstream": run_tabstream, "flaml": run_flaml, "xgboost": run_xgboost}


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
    name: str, card: dict[str, Any], args: argparse.Namespace, systems: list[str]
) -> dict[str, Any]:
    """All systems on one dataset; returns its result record."""
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
            out = RUNNERS[system](train, test, label, kind, args.budget, args.seed)
        except Exception as exc:  # a failing system is reported, the benchmark goes on
            record["systems"][system] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"  {name}: {system} failed: {exc}", flush=True)
            continue
        raw = out.pop("raw")
        raw = align(raw, out.pop("classes"), classes) if kind != "regression" else raw
        out["score"] = test_score(metric, y_test, raw)
        record["systems"][system] = out
        print(f"  {name}: {system} {metric}={out['score']:.5f} fit {out['fit_s']:.1f}s", flush=True)
    record["winner"] = winner(record)
    return record


def winner(record: dict[str, Any]) -> str | None:
    """The system with the best test score."""
    scores = {s: v["score"] for s, v in record["systems"].items() if "score" in v}
    if not scores:
        return None
    pick = max if GREATER[record["metric"]] else min
    return pick(scores, key=lambda s: scores[s])


def beats(record: dict[str, Any], a: str, b: str) -> bool | None:
    """Whether system ``a`` scores at least as well as ``b`` (None when either is missing)."""
    sa = record["systems"].get(a, {}).get("score")
    sb = record["systems"].get(b, {}).get("score")
    if sa is None or sb is None:
        return None
    return bool(sa >= sb) if GREATER[record["metric"]] else bool(sa <= sb)


def markdown(records: list[dict[str, Any]], args: argparse.Namespace, summary: str) -> str:
    """The Markdown report."""

    def cell(r: dict[str, Any], s: str) -> str:
        v = r["systems"].get(s)
        if v is None:
            return "-"
        if "score" not in v:
            return "error"
        return f"{v['score']:.4f} ({v['fit_s']:.0f} s)"

    rows = [
        [r["dataset"], r["metric"], *(cell(r, s) for s in SYSTEMS), r["winner"] or "-"]
        for r in records
    ]
    header = ["dataset", "metric", "tabstream", "FLAML", "xgboost default", "winner"]
    detail = []
    for r in records:
        ts = r["systems"].get("tabstream", {})
        if "trials" in ts:
            ens = ts.get("ensemble") or []
            members = ", ".join(f"{m['family']}#{m['trial']}:{m['weight']:.2f}" for m in ens)
            detail.append(
                [r["dataset"], ts["model_types"], ts["trials"], members or "-", ts["cv_score"]]
            )
    return (
        f"# Quality: tabstream vs FLAML vs default xgboost\n\n"
        f"Budget {args.budget:g} s of wall clock per dataset and system (fit time in brackets; "
        f"xgboost default has no budget), seeded 80/20 outer split (seed {args.seed}, stratified "
        f"for classification), test metric: AUC (higher is better), logloss / RMSE (lower).\n"
        f"Machine: {os.cpu_count()} CPU cores shared with other work, so times are noisy.\n\n"
        + md_table(header, rows)
        + f"\n{summary}\n\n## tabstream details\n\n"
        + md_table(["dataset", "model types", "trials", "ensemble members", "CV score"], detail)
    )


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _merged(
    args: argparse.Namespace, order: list[str], fresh: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Earlier records of ``<name>.json`` with the ``fresh`` ones replacing theirs, in
    CARDS order (``--update``)."""
    path = args.out / f"{args.name}.json"
    old = json.loads(path.read_text())["datasets"] if path.exists() else []
    by_name = {r["dataset"]: r for r in old} | fresh
    return [by_name[n] for n in order if n in by_name]


def main(argv: list[str]) -> int:
    """Run the benchmark and write results."""
    args = parse(argv)
    cards = json.loads((args.data / "CARDS.json").read_text())
    names = args.datasets.split(",") if args.datasets else list(cards)
    systems = [s for s in args.systems.split(",") if s]
    fresh = {}
    for name in names:
        print(f"== {name} (budget {args.budget:g} s)", flush=True)
        fresh[name] = bench_dataset(name, cards[name], args, systems) | {"run_at": _now()}
    records = _merged(args, list(cards), fresh) if args.update else list(fresh.values())
    wins = [beats(r, "tabstream", "flaml") for r in records]
    n_cmp = sum(w is not None for w in wins)
    summary = f"tabstream >= FLAML on {sum(bool(w) for w in wins)} of {n_cmp} datasets."
    data = {
        "budget_s": args.budget,
        "seed": args.seed,
        "machine": machine(),
        "datasets": records,
        "tabstream_ge_flaml": sum(bool(w) for w in wins),
        "compared": n_cmp,
    }
    js, md = write(args.out, args.name, data, markdown(records, args, summary))
    panels = [
        (
            f"{r['dataset']} ({r['metric']})",
            {s: r["systems"].get(s, {}).get("score") for s in SYSTEMS},
        )
        for r in records
    ]
    png = bar_panels(
        args.out / f"{args.name}.png", panels, f"test metric, budget {args.budget:g} s"
    )
    print(md.read_text())
    print(f"wrote {js}, {md}, {png}")
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
