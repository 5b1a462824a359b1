"""Forecasting benchmark: tabstream vs seasonal-naive baselines on bikeshare's last month.

``python -m benchmarks.forecast [--data PATH] [--trials N] [--horizon H]`` trains a forecasting
run (xgboost, a handful of optuna trials, last-window holdout) on every hour before December 2011,
then scores 24-hour-ahead forecasts of ``bikers`` for every hour of December from a rolling
origin (each forecast sees only the data up to its cutoff, 24 hours earlier), against:

- seasonal naive, day: the value at the same hour the day before the target;
- seasonal naive, week: the value at the same hour a week before the target.

All methods are scored on the same target hours (those where every method has a forecast).
MASE divides each MAE by one scale: the in-sample MAE of the daily seasonal-naive forecast
(period 24) on the training months. sMAPE is in percent (0..200). Target: tabstream MASE < 1 and
below both baselines. Writes ``benchmarks/results/forecast.json`` and ``forecast.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tabstream.adapters.artifacts.local import LocalArtifactStore
from tabstream.bootstrap.common import pipeline_options
from tabstream.pipeline.finish.bundle import load_bundle
from tabstream.pipeline.tasks.forecast import backtest_inputs
from tabstream.pipeline.train import DatasetRef, run
from tabstream.schemas.run import TrainerRunRequest
from tabstream.schemas.tasks import ForecastingTask
from tabstream.settings import PipelineSettings

RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bikeshare.parquet"
TEST_START = datetime(2011, 12, 1)
HOUR_NS = 3600 * 10**9


def parse(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.forecast", description=__doc__)
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--trials", type=int, default=6)
    p.add_argument("--horizon", type=int, default=24)
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


def load(path: Path) -> pa.Table:
    """Bikeshare with a constant ``store`` id column."""
    table = pq.read_table(path)
    return table.append_column("store", pa.array(["dc"] * table.num_rows))


def task(horizon: int) -> ForecastingTask:
    """The benchmark's forecasting task."""
    return ForecastingTask(
        label_column="bikers", id_column="store", timestamp_column="ts", horizon=horizon
    )


def train(table: pa.Table, horizon: int, trials: int, root: Path) -> tuple[Any, dict[str, Any]]:
    """Run tabstream on ``table`` with the operator's pipeline settings
    (``TABSTREAM_FAMILY_THREADS``; unset: all cores); the loaded best model and its summary."""
    options = pipeline_options(PipelineSettings())
    store = LocalArtifactStore(root)
    store.write_parquet("datasets/train.parquet", table)
    body = {"dataset_id": str(uuid4()), "task": task(horizon).model_dump(),
            "model_types": ["xgboost"], "n_trials": trials, "n_splits": None,
            "metrics": ["mase", "smape", "rmse"]}  # fmt: skip
    events: list[Any] = []
    ref = DatasetRef(uuid4(), "datasets/train.parquet")
    start = time.monotonic()
    request = TrainerRunRequest.model_validate(body)
    result = run(request, ref, store, events.append, job_id=uuid4(), options=options)
    seconds = time.monotonic() - start
    (reg,) = [e for e in events if e.type == "ModelRegistered"]
    model = load_bundle(store, str(reg.model_id), reg.sha256, options.families)
    best = result.leaderboard[0]
    return model, {"train_seconds": seconds, "validation": best.metrics, "params": best.params}


def rolling_forecasts(model: Any, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(target times ns, forecasts) from every observed cutoff of ``table`` (rolling origin)."""
    inputs = backtest_inputs(model.recipe, table)
    preds = replace(model, recipe=None).predict(inputs.features)
    target = inputs.keys.column("ts").cast(pa.int64()).to_numpy()
    return np.asarray(target, dtype=np.int64), np.asarray(preds, dtype=np.float64)


def seasonal_naive(
    times: np.ndarray, values: np.ndarray, targets: np.ndarray, lag_h: int
) -> np.ndarray:
    """The value ``lag_h`` hours before each target time (NaN where that hour is missing)."""
    want = targets - lag_h * HOUR_NS
    idx = np.clip(np.searchsorted(times, want), 0, len(times) - 1)
    return np.where(times[idx] == want, values[idx], np.nan)


def in_sample_scale(times: np.ndarray, values: np.ndarray) -> float:
    """MAE of the daily seasonal-naive forecast over the training hours."""
    naive = seasonal_naive(times, values, times, 24)
    ok = np.isfinite(naive)
    return float(np.mean(np.abs(values[ok] - naive[ok])))


def scores(y: np.ndarray, pred: np.ndarray, scale: float) -> dict[str, float]:
    """MASE, sMAPE, MAE and RMSE of ``pred``."""
    mae = float(np.mean(np.abs(y - pred)))
    den = np.abs(y) + np.abs(pred)
    smape = np.divide(2 * np.abs(pred - y), den, out=np.zeros_like(den), where=den > 0)
    return {"mase": mae / scale, "smape": float(100 * smape.mean()), "mae": mae,
            "rmse": float(np.sqrt(np.mean((y - pred) ** 2)))}  # fmt: skip


def evaluate(table: pa.Table, model: Any, horizon: int) -> dict[str, Any]:
    """Score tabstream and the baselines on the December targets (same hours for all)."""
    times = table.column("ts").cast(pa.int64()).to_numpy()
    values = table.column("bikers").cast(pa.float64()).to_numpy()
    test_ns = int(pa.scalar(TEST_START, pa.timestamp("ns")).cast(pa.int64()).as_py())
    train_scale = in_sample_scale(times[times < test_ns], values[times < test_ns])
    targets, preds = rolling_forecasts(model, table)
    actual = seasonal_naive(times, values, targets, 0)
    day, week = (seasonal_naive(times, values, targets, h) for h in (24, 168))
    ok = (targets >= test_ns) & np.isfinite(actual) & np.isfinite(day) & np.isfinite(week)
    methods = {"tabstream (xgboost)": preds, "seasonal naive (day)": day,
               "seasonal naive (week)": week}  # fmt: skip
    return {
        "n_targets": int(ok.sum()),
        "mase_scale": train_scale,
        "methods": {k: scores(actual[ok], v[ok], train_scale) for k, v in methods.items()},
    }


def write(out: Path, result: dict[str, Any]) -> None:
    """``forecast.json`` and ``forecast.md`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "forecast.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Forecasting benchmark: bikeshare, December 2011, 24 h ahead", "",
        f"Rolling origin over {result['n_targets']} target hours; trained on Jan-Nov "
        f"({result['train_seconds']:.1f} s, {result['trials']} xgboost trials, "
        f"{result['cpus']} CPUs). MASE scale: in-sample daily seasonal-naive MAE "
        f"{result['mase_scale']:.2f}.", "",
        "| method | MASE | sMAPE % | MAE | RMSE |", "|---|---|---|---|---|",
    ]  # fmt: skip
    for name, m in result["methods"].items():
        lines.append(
            f"| {name} | {m['mase']:.3f} | {m['smape']:.1f} | {m['mae']:.1f} | {m['rmse']:.1f} |"
        )
    (out / "forecast.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Train, evaluate, write the results and print the table."""
    args = parse(argv if argv is not None else [])
    table = load(args.data)
    train_part = table.filter(
        pc.less(table.column("ts"), pa.scalar(TEST_START, pa.timestamp("ns")))
    )
    with tempfile.TemporaryDirectory() as tmp:
        model, summary = train(train_part, args.horizon, args.trials, Path(tmp))
    result = evaluate(table, model, args.horizon) | summary
    result |= {"trials": args.trials, "horizon": args.horizon, "cpus": os.cpu_count(),
               "platform": platform.platform(), "target": "tabstream MASE < 1"}  # fmt: skip
    write(args.out, result)
    print((args.out / "forecast.md").read_text())
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
