"""Overhead benchmark: tabstream's pipeline vs a plain optuna + xgboost loop doing the same trials.

``python -m benchmarks.overhead [--dataset credit_g] [--trials 20] [--folds 5] [--repeats 3]``

Both sides: xgboost only, the same TPE sampler and seed (tabstream's row 0 seed), trial 0 the
family's default params then its portfolio configs, the same search space
(``XGBoostFamily.suggest``), the same stratified / plain K folds, the same booster params (hist,
early stopping on the validation fold, the same per-fold seeds, the same thread count) and the
same mean-over-folds score. The plain loop ordinal-encodes categoricals once over all rows and
keeps everything in memory; tabstream runs ``pipeline.train.run`` for real (LocalArtifactStore in a
temp dir: Parquet load, per-fold preprocessing, optuna journal file, OOF safetensors, events,
refit on all data, bundle save).

The ratio is min(tabstream) / min(plain) over ``--repeats`` interleaved runs (target <= 1.10).
A separate cProfile'd tabstream run breaks its time into phases. Writes
``benchmarks/results/overhead.json`` and ``overhead.md``. The machine is shared: times are noisy.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xgboost as xgb
from sklearn.model_selection import KFold, StratifiedKFold

from benchmarks._report import RESULTS, machine, md_table, write

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
METRIC = {"binclass": "auc", "multiclass": "logloss", "regression": "rmse"}


def parse(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.overhead", description=__doc__)
    p.add_argument("--dataset", default="credit_g")
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--no-profile", action="store_true")
    return p.parse_args(argv)


def request(dataset_id: uuid.UUID, kind: str, label: str, args: argparse.Namespace) -> Any:
    """tabstream's request: xgboost only, ``--trials`` trials, ``--folds`` folds, no ensemble."""
    from tabstream.schemas.run import TrainerRunRequest

    return TrainerRunRequest.model_validate(
        {
            "dataset_id": str(dataset_id),
            "task": {"task_kind": kind, "label_column": label},
            "model_types": ["xgboost"],
            "n_trials": args.trials,
            "n_splits": args.folds,
            "ensemble": False,
            "random_state": args.seed,
        }
    )


def run_tabstream(table: pa.Table, kind: str, label: str, args: argparse.Namespace) -> dict:
    """One real pipeline run (with the operator's pipeline settings, as a worker runs it);
    returns wall time and per-trial scores."""
    from tabstream.adapters.artifacts.local import LocalArtifactStore
    from tabstream.bootstrap.common import pipeline_options
    from tabstream.pipeline.train import DatasetRef, run
    from tabstream.settings import PipelineSettings

    events: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="tabstream-overhead-") as tmp:
        store = LocalArtifactStore(Path(tmp))
        dataset_id = uuid.uuid4()
        key = f"datasets/{dataset_id}.parquet"
        store.write_parquet(key, table)
        start, cpu = time.perf_counter(), time.process_time()
        run(
            request(dataset_id, kind, label, args),
            DatasetRef(dataset_id, key),
            store,
            events.append,
            "cpu",
            job_id=uuid.uuid4(),
            options=pipeline_options(PipelineSettings()),
        )
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    trials = [e for e in events if e.type == "TrialCompleted"]
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "fit_s": sum(e.fit_seconds + e.predict_seconds for e in trials),
        "scores": [e.score for e in trials],
    }


def _encode(table: pa.Table, label: str, kind: str) -> tuple[np.ndarray, list[bool], np.ndarray]:
    """Plain ordinal encoding over all rows: strings -> sorted codes, numbers as float32."""
    cols, cats = [], []
    for name in table.column_names:
        if name == label:
            continue
        col = table.column(name)
        if pa.types.is_string(col.type) or pa.types.is_boolean(col.type):
            values = sorted(v for v in pc.unique(col).to_pylist() if v is not None)
            codes = pc.index_in(col, value_set=pa.array(values, col.type))
            cols.append(np.asarray(pc.fill_null(codes.cast(pa.float64()), np.nan)))
            cats.append(True)
        else:
            cols.append(np.asarray(pc.fill_null(col.cast(pa.float64()), np.nan)))
            cats.append(False)
    X = np.column_stack(cols).astype(np.float32)
    y_col = table.column(label)
    if kind == "regression":
        y = np.asarray(y_col.cast(pa.float64()))
    else:
        classes = sorted(pc.unique(y_col).to_pylist())
        y = np.asarray(pc.index_in(y_col, value_set=pa.array(classes, y_col.type)), np.int64)
    return X, cats, y


def run_plain(table: pa.Table, kind: str, label: str, args: argparse.Namespace) -> dict:
    """The same trials with optuna + xgboost and nothing else (in-memory study)."""
    from tabstream.pipeline.families._common import n_threads
    from tabstream.pipeline.families.xgboost import XGBoostFamily, _booster_params
    from tabstream.pipeline.search.scoring import get_metric, score, to_loss
    from tabstream.pipeline.types import ProblemSpec
    from tabstream.settings import PipelineSettings

    threads = PipelineSettings().family_threads  # what the tabstream side's fits are told

    start, cpu = time.perf_counter(), time.process_time()
    X, cats, y = _encode(table, label, kind)
    classes = tuple(range(int(y.max()) + 1)) if kind != "regression" else None
    spec = ProblemSpec(kind, label, classes)  # type: ignore[arg-type]
    metric = get_metric(METRIC[kind])
    family = XGBoostFamily()
    ftypes = ["c" if c else "q" for c in cats]
    splitter: Any = (
        StratifiedKFold(args.folds, shuffle=True, random_state=args.seed)
        if kind != "regression"
        else KFold(args.folds, shuffle=True, random_state=args.seed)
    )
    folds = list(splitter.split(X, y))
    study = optuna.create_study(
        direction="minimize", sampler=optuna.samplers.TPESampler(seed=args.seed)
    )
    study.enqueue_trial(family.default_params(spec))
    for config in family.portfolio(spec):  # tabstream's next trials (``search``)
        study.enqueue_trial(config)
    scores = []
    for number in range(args.trials):
        trial = study.ask()
        params = family.suggest(trial, spec)
        if number == 0:
            params |= family.default_params(spec)
        per_fold = []
        for f, (tr, va) in enumerate(folds):
            dtr = xgb.QuantileDMatrix(
                X[tr], label=y[tr], feature_types=ftypes, enable_categorical=any(cats)
            )
            dva = xgb.QuantileDMatrix(
                X[va], label=y[va], feature_types=ftypes, enable_categorical=any(cats), ref=dtr
            )
            booster = xgb.train(
                _booster_params(params, spec, "cpu", args.seed + f, threads),
                dtr,
                num_boost_round=int(params["n_estimators"]),
                evals=[(dva, "val")],
                early_stopping_rounds=int(params["early_stopping_rounds"]),
                verbose_eval=False,
            )
            pred = booster.predict(dva, iteration_range=(0, booster.best_iteration + 1))
            pred = np.asarray(pred, np.float64)
            if kind == "binclass":
                pred = np.column_stack([1 - pred, pred])
            per_fold.append(score(metric, y[va], pred))
        value = float(np.mean(per_fold))
        scores.append(value)
        study.tell(trial, to_loss(metric, value))
    return {
        "wall_s": time.perf_counter() - start,
        "cpu_s": time.process_time() - cpu,
        "scores": scores,
        "threads": n_threads(None, threads),
    }


PROFILE = (
    ("load + prepare (Parquet, labels, splits)", "pipeline/train.py", "_setup"),
    ("per-fold preprocessing (fit + transform)", "pipeline/search/rows.py", "fold_data"),
    ("cross-validation (fits + predictions)", "pipeline/search/study.py", "_cross_validate"),
    ("  of which xgboost.train", "xgboost/training.py", "train"),
    ("fold metrics", "pipeline/search/rows.py", "fold_metrics"),
    ("OOF persistence (safetensors put)", "adapters/artifacts/pyarrow_fs.py", "put_bytes"),
    ("optuna ask", "optuna/study/study.py", "ask"),
    ("optuna tell", "optuna/study/study.py", "tell"),
    ("journal file appends", "journal/_file.py", "append_logs"),
    ("event payloads", "pipeline/search/row_events.py", "trial_event"),
    ("finish: refit on all data + bundle save", "pipeline/finish/leaderboard.py", "finish"),
)


def profile_tabstream(table: pa.Table, kind: str, label: str, args: argparse.Namespace) -> dict:
    """cProfile one tabstream run; cumulative seconds of the pipeline's phases."""
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    run_tabstream(table, kind, label, args)
    profiler.disable()
    out = {"wall (profiled run)": round(time.perf_counter() - start, 3)}
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    for name, suffix, func in PROFILE:
        total = sum(
            v[3] for (file, _, fn), v in stats.items() if fn == func and file.endswith(suffix)
        )
        out[name] = round(total, 3)
    return out


def main(argv: list[str]) -> int:
    """Run the benchmark and write results."""
    args = parse(argv)
    cards = json.loads((args.data / "CARDS.json").read_text())
    card = cards[args.dataset]
    table = pq.read_table(args.data / card["file"])
    kind, label = card["task"], card["label"]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    runs: dict[str, list[dict]] = {"tabstream": [], "plain": []}
    for i in range(args.repeats):
        order = ["plain", "tabstream"] if i % 2 == 0 else ["tabstream", "plain"]
        for name in order:
            fn = run_plain if name == "plain" else run_tabstream
            res = fn(table, kind, label, args)
            runs[name].append(res)
            print(
                f"  repeat {i} {name}: {res['wall_s']:.2f} s, cpu {res['cpu_s']:.2f} s", flush=True
            )
    best = {k: min(r["wall_s"] for r in v) for k, v in runs.items()}
    best_cpu = {k: min(r["cpu_s"] for r in v) for k, v in runs.items()}
    ratio = best["tabstream"] / best["plain"]
    cpu_ratio = best_cpu["tabstream"] / best_cpu["plain"]
    ts_scores, plain_scores = runs["tabstream"][0]["scores"], runs["plain"][0]["scores"]
    same = bool(np.allclose(ts_scores, plain_scores, rtol=1e-6, atol=1e-9))
    profile = {} if args.no_profile else profile_tabstream(table, kind, label, args)
    data = {
        "dataset": args.dataset,
        "trials": args.trials,
        "folds": args.folds,
        "repeats": args.repeats,
        "threads": runs["plain"][0]["threads"],
        "wall_s": {k: [r["wall_s"] for r in v] for k, v in runs.items()},
        "best_wall_s": best,
        "ratio": ratio,
        "best_cpu_s": best_cpu,
        "cpu_ratio": cpu_ratio,
        "cpu_s": {k: [r["cpu_s"] for r in v] for k, v in runs.items()},
        "target": 1.10,
        "same_trial_scores": same,
        "tabstream_scores": ts_scores,
        "plain_scores": plain_scores,
        "profile_s": profile,
        "machine": machine(),
    }
    rows = [
        [
            k,
            " / ".join(f"{r['wall_s']:.2f}" for r in v),
            f"{best[k]:.2f}",
            " / ".join(f"{r['cpu_s']:.2f}" for r in v),
            f"{best_cpu[k]:.2f}",
        ]
        for k, v in runs.items()
    ]
    md = (
        f"# Overhead: tabstream pipeline vs plain optuna + xgboost\n\n"
        f"{args.dataset}, xgboost only, {args.trials} TPE trials x {args.folds} folds, "
        f"{data['threads']} xgboost threads, best of {args.repeats} interleaved runs. "
        f"Shared {machine()['cpus']}-core machine: times are noisy.\n\n"
        + md_table(
            ["system", "wall s (each run)", "best wall s", "CPU s (each)", "best CPU s"], rows
        )
        + f"\n**ratio tabstream / plain = {ratio:.3f}** wall, {cpu_ratio:.3f} process CPU time "
        f"(target <= 1.10); the same trial scores "
        f"on both sides: {same}.\n\n## tabstream profile (one cProfile'd run, cumulative s)\n\n"
        + md_table(["phase", "s"], [[k, v] for k, v in profile.items()])
    )
    js, mdp = write(args.out, "overhead", data, md)
    print(mdp.read_text())
    print(f"wrote {js}, {mdp}")
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
