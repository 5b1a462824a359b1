"""Distillation benchmark: a small xgboost student (depth 3, 60 trees) with and without a strong
teacher (xgboost defaults: depth 6, up to 1000 rounds with early stopping).

``python -m benchmarks.distill [--seeds N]``: for each dataset, a seeded 75/25 train/test
split; the teacher trains on all train rows (the strong model a team already has, e.g. a
``teacher_model_id`` from a bigger job); the students see only ``--student-rows`` labelled
train rows: the undistilled one trains on them, the distilled one on them plus
``pipeline.distill`` synthetic rows labelled by the teacher through the teacher protocol
(``InProcessTeacher``). Reported on the test rows: the
dataset's metric against the true labels and fidelity to the teacher (agreement or R^2),
averaged over seeds. Writes ``benchmarks/results/distill.json`` and ``distill.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from pydantic import TypeAdapter

from tabstream.bootstrap.common import pipeline_options
from tabstream.pipeline.distill.augment import augment, fidelity
from tabstream.pipeline.families import Families
from tabstream.pipeline.finish.bundle import LoadedModel
from tabstream.pipeline.options import DistillOptions
from tabstream.pipeline.predict import InProcessTeacher
from tabstream.pipeline.search.scoring import get_metric, score
from tabstream.pipeline.tasks.prepare import prepare
from tabstream.pipeline.tasks.preprocess import Preprocessor
from tabstream.pipeline.types import Family
from tabstream.schemas.tasks import Task
from tabstream.settings import PipelineSettings

RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DATASETS = {  # name: (label, kind, metric, rows used)
    "adult": ("income", "binclass", "auc", 8000),
    "california_housing": ("MedHouseVal", "regression", "rmse", 6000),
}
STUDENT = {"max_depth": 3, "n_estimators": 60, "learning_rate": 0.2, "subsample": 1.0,
           "colsample_bytree": 1.0}  # fmt: skip


def parse(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.distill", description=__doc__)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--ratio", type=float, default=4.0, help="synthetic rows per student row")
    p.add_argument("--student-rows", type=int, default=500)
    return p.parse_args(argv)


def _fit(
    family: Family, features: Any, y: np.ndarray, spec: Any, params: dict[str, Any], seed: int
) -> Any:
    pre = Preprocessor("tree").fit(features)
    X = pre.transform(features)
    if params is STUDENT:
        return pre, family.fit(X, y, None, None, params, spec, "cpu", seed)
    n = len(y)
    perm = np.random.default_rng(seed).permutation(n)
    ho, tr = perm[: n // 10], perm[n // 10 :]
    Xtr, Xho = _rows(X, tr), _rows(X, ho)
    return pre, family.fit(Xtr, y[tr], Xho, y[ho], params, spec, "cpu", seed)


def _xgboost() -> Family:
    """The xgboost family with the operator's settings (``TABSTREAM_FAMILY_THREADS``; unset:
    all cores)."""
    return Families(pipeline_options(PipelineSettings()).families)["xgboost"]


def _rows(X: Any, idx: np.ndarray) -> Any:
    from dataclasses import replace

    return replace(X, values=X.values[idx])


def _predict(model: tuple[Any, Any], features: Any) -> np.ndarray:
    pre, fitted = model
    return np.asarray(fitted.predict_raw(pre.transform(features)))


def one(
    name: str, seed: int, ratio: float, n_student: int = 500, family: Family | None = None
) -> dict[str, Any]:
    """Teacher, plain student and distilled student on one seeded split (xgboost ``family``:
    the operator's family settings by default)."""
    family = family or _xgboost()
    label, kind, metric_name, rows = DATASETS[name]
    table = pq.read_table(DATA / f"{name}.parquet")
    table = table.take(np.random.default_rng(0).permutation(table.num_rows)[:rows])
    task = TypeAdapter(Task).validate_python({"task_kind": kind, "label_column": label})
    prep = prepare(table, task)
    perm = np.random.default_rng(seed).permutation(prep.n_rows)
    n_test = prep.n_rows // 4
    te, tr = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    x_tr, x_te, y_tr, y_te = prep.features.take(tr), prep.features.take(te), prep.y[tr], prep.y[te]
    spec, metric = prep.spec, get_metric(metric_name)
    teacher_params = family.default_params(spec)
    start = time.perf_counter()
    teacher = _fit(family, x_tr, y_tr, spec, teacher_params, seed)
    features = [(f.name, str(f.type)) for f in x_tr.schema]
    loaded = LoadedModel(spec, "single", features, {}, [(1.0, [teacher])])
    t_pred = _predict(teacher, x_te)
    x_st, y_st = x_tr.slice(0, n_student), y_tr[:n_student]
    plain = _predict(_fit(family, x_st, y_st, spec, STUDENT, seed), x_te)
    config = DistillOptions(ratio=ratio)
    split = [(np.arange(len(y_st)), np.zeros(0, dtype=np.int64))]
    aug = augment(x_st, y_st, spec, split, InProcessTeacher(loaded), config, seed)
    distilled = _predict(_fit(family, aug.features, aug.y, spec, STUDENT, seed), x_te)
    return {
        "teacher": score(metric, y_te, t_pred),
        "plain": score(metric, y_te, plain),
        "distilled": score(metric, y_te, distilled),
        "plain_fidelity": next(iter(fidelity(spec, plain, t_pred).values())),
        "distilled_fidelity": next(iter(fidelity(spec, distilled, t_pred).values())),
        "synthetic_rows": aug.features.num_rows - len(y_st),
        "seconds": time.perf_counter() - start,
    }


def main(argv: list[str] | None = None) -> None:
    """Run every dataset over the seeds and write the report."""
    args = parse(argv or [])
    family = _xgboost()
    report: dict[str, Any] = {"student": STUDENT, "ratio": args.ratio, "seeds": args.seeds,
                              "student_rows": args.student_rows,
                              "machine": platform.platform(), "datasets": {}}  # fmt: skip
    for name, (_, kind, metric, rows) in DATASETS.items():
        runs = [
            one(name, seed, args.ratio, args.student_rows, family) for seed in range(args.seeds)
        ]
        mean = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
        better = get_metric(metric).greater_is_better
        wins = mean["distilled"] > mean["plain"] if better else mean["distilled"] < mean["plain"]
        report["datasets"][name] = {"kind": kind, "metric": metric, "rows": rows, "mean": mean,
                                    "distilled_wins": bool(wins), "runs": runs}  # fmt: skip
        print(name, json.dumps(mean), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "distill.json").write_text(json.dumps(report, indent=2))
    (RESULTS / "distill.md").write_text(markdown(report))


def markdown(report: dict[str, Any]) -> str:
    """The Markdown table of a report."""
    lines = [
        "# Distillation: small xgboost student with vs without a teacher",
        "",
        f"Student {report['student']} on {report['student_rows']} labelled rows; teacher "
        f"xgboost defaults on all train rows; synthetic rows = {report['ratio']} x student rows; "
        f"test split 25%; mean of {report['seeds']} seeds.",
        "",
        "| dataset | metric | teacher | student | distilled student | fidelity student "
        "| fidelity distilled | distilled wins |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, d in report["datasets"].items():
        m = d["mean"]
        lines.append(
            f"| {name} ({d['rows']} rows) | {d['metric']} | {m['teacher']:.4f} | {m['plain']:.4f} "
            f"| {m['distilled']:.4f} | {m['plain_fidelity']:.4f} | {m['distilled_fidelity']:.4f} "
            f"| {'yes' if d['distilled_wins'] else 'no'} |"
        )
    lines += ["", "Fidelity: agreement of predicted classes (binclass) or R^2 to the teacher's "
              "values (regression), on the test rows."]  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
