"""AutoGluon in its own interpreter: ``python -m benchmarks._autogluon_run DIR``.

AutoGluon pins its own numpy / pandas / xgboost / torch ranges, so ``make bench`` installs it into
``.venv-autogluon`` and the quality benchmark runs it here, as it runs FLAML. ``DIR`` holds
``train.parquet``, ``test.parquet`` and ``job.json`` {label, kind, budget, seed}; this writes
``raw.npy`` (test predictions: (n, K) probabilities in ``classes`` order, or (n,) values) and
``result.json`` (fit and predict seconds, the leaderboard, the weighted ensemble's weights).

AutoGluon has no global seed: ``seed`` seeds numpy and ``random``, and the learner's
``random_state`` (its holdout split); each model keeps AutoGluon's own fixed seed (0), which only
a per-model hyperparameter could change, and that would replace the preset's model set.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from benchmarks.quality import METRIC, frames

PROBLEM_TYPE = {"binclass": "binary", "multiclass": "multiclass", "regression": "regression"}
AUTOGLUON_METRIC = {"auc": "roc_auc", "logloss": "log_loss", "rmse": "root_mean_squared_error"}
PRESET = "medium_quality"


def ensemble_weights(predictor: Any) -> dict[str, float]:
    """Weights of the best weighted-ensemble model over its base models ({} when none was fit)."""
    names = [n for n in predictor.model_names() if n.startswith("WeightedEnsemble")]
    if not names:
        return {}
    best = predictor.model_best if predictor.model_best in names else names[-1]
    weights = predictor._trainer.load_model(best)._get_model_weights()
    return {str(k): float(v) for k, v in sorted(weights.items(), key=lambda kv: -kv[1])}


def describe(predictor: Any) -> dict[str, Any]:
    """The leaderboard (validation scores), per-model-type counts and the ensemble's weights."""
    board = predictor.leaderboard(silent=True)
    names = [str(n) for n in board["model"]]
    types = [str(predictor.model_info(n)["model_type"]) for n in names]
    return {
        "best_model": str(predictor.model_best),
        "leaderboard": [
            {"model": n, "type": t, "score_val": float(s)}
            for n, t, s in zip(names, types, board["score_val"], strict=True)
        ],
        "model_counts": dict(Counter(t for t in types if not t.startswith("WeightedEnsemble"))),
        "ensemble": ensemble_weights(predictor),
    }


def main(folder: str) -> int:
    """Fit AutoGluon (medium preset) on the folder's train part within the budget and predict
    its test part."""
    from autogluon.tabular import TabularPredictor

    d = Path(folder)
    job = json.loads((d / "job.json").read_text())
    label, kind, seed = job["label"], job["kind"], int(job["seed"])
    random.seed(seed)
    np.random.seed(seed)
    train, test = pq.read_table(d / "train.parquet"), pq.read_table(d / "test.parquet")
    xtr, xte = frames(train, test, label, dates="keep")
    xtr[label] = train.column(label).to_pandas()
    predictor = TabularPredictor(
        label=label,
        problem_type=PROBLEM_TYPE[kind],
        eval_metric=AUTOGLUON_METRIC[METRIC[kind]],
        path=str(d / "autogluon-models"),
        verbosity=0,
        learner_kwargs={"random_state": seed},
    )
    start = time.monotonic()
    predictor.fit(
        xtr, time_limit=job["budget"], presets=PRESET, num_cpus=os.cpu_count() or 1, num_gpus=0
    )
    fit_s = time.monotonic() - start
    start = time.monotonic()
    if kind == "regression":
        raw, classes = predictor.predict(xte).to_numpy(), None
    else:
        proba = predictor.predict_proba(xte, as_multiclass=True)
        raw, classes = proba.to_numpy(), [str(c) for c in proba.columns]
    predict_s = time.monotonic() - start
    np.save(d / "raw.npy", np.asarray(raw, dtype=np.float64))
    result = {
        "classes": classes,
        "fit_s": fit_s,
        "predict_s": predict_s,
        "preset": PRESET,
        **describe(predictor),
    }
    (d / "result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
