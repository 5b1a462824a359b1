"""FLAML in its own interpreter: ``python -m benchmarks._flaml_run DIR``.

FLAML pins ``xgboost<3``, which must not downgrade the xgboost tabstream is benchmarked with, so
``make bench`` installs FLAML into ``.venv-flaml`` and the quality benchmark runs it here.
``DIR`` holds ``train.parquet``, ``test.parquet`` and ``job.json`` {label, kind, budget, seed};
this writes ``raw.npy`` (test predictions) and ``result.json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from benchmarks.quality import FLAML_METRIC, METRIC, frames


def main(folder: str) -> int:
    """Fit FLAML on the folder's train part within the budget and predict its test part."""
    from flaml import AutoML

    d = Path(folder)
    job = json.loads((d / "job.json").read_text())
    label, kind = job["label"], job["kind"]
    train, test = pq.read_table(d / "train.parquet"), pq.read_table(d / "test.parquet")
    xtr, xte = frames(train, test, label, dates="keep")
    automl = AutoML()
    start = time.monotonic()
    automl.fit(
        xtr,
        train.column(label).to_pandas(),
        task="regression" if kind == "regression" else "classification",
        metric=FLAML_METRIC[METRIC[kind]],
        time_budget=job["budget"],
        seed=job["seed"],
        verbose=0,
        log_file_name="",
    )
    fit_s = time.monotonic() - start
    start = time.monotonic()
    raw = automl.predict(xte) if kind == "regression" else automl.predict_proba(xte)
    predict_s = time.monotonic() - start
    np.save(d / "raw.npy", np.asarray(raw, dtype=np.float64))
    result = {
        "classes": [str(c) for c in automl.classes_] if kind != "regression" else None,
        "fit_s": fit_s,
        "predict_s": predict_s,
        "best_estimator": automl.best_estimator,
        "best_config": automl.best_config,
    }
    (d / "result.json").write_text(json.dumps(result, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
