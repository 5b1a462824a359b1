"""CatBoost family: oblivious trees via ``catboost.CatBoost`` on a ``catboost.Pool``.

Categorical columns (ordinal float codes, NaN = missing) become ``cat_features`` as int codes
(``MISSING_CODE`` for missing); numeric NaN is missing (``nan_mode`` Min). Training writes no
files. On CUDA (``task_type="GPU"``) catboost refuses python callbacks, so the time budget stops
the trial between folds only. Saved as the model's native CBM bytes plus a JSON meta.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import catboost
import numpy as np
import optuna
import pandas as pd

from tabstream.pipeline.families import _common
from tabstream.pipeline.options import FamilyOptions
from tabstream.pipeline.search.budget import (
    check_time,
    fit_limit_s,
    has_time_check,
    stopped_at_limit,
)
from tabstream.pipeline.types import (
    Device,
    FeatureMatrix,
    FittedModel,
    PreprocessingKind,
    ProblemSpec,
)

MODEL_FILE = "model.cbm"
META_FILE = "meta.json"
MISSING_CODE = -1
LOSSES = {"binclass": "Logloss", "multiclass": "MultiClass", "regression": "RMSE"}
MAX_ITERATIONS = 10_000
MANY_CLASSES = 10
"""Above this, MultiClass iterations (~K x a binary one) are capped (``max_iterations``)."""
MAX_HASTE = 4.0
"""A hastened fit's learning rate is at most this many times its own (``hastened``)."""
MAX_HASTENED_RATE = 0.3
"""... and at most the top of the search space's learning rates."""
TREE_KEYS = (
    "learning_rate",
    "depth",
    "l2_leaf_reg",
    "random_strength",
    "bootstrap_type",
    "bagging_temperature",
    "subsample",
    "one_hot_max_size",
    "border_count",
)


def patience(learning_rate: float) -> int:
    """Early-stopping wait (``od_wait``) for a learning rate: about 15 / lr iterations, within
    [20, 300] (300 at the default 0.05, AutoGluon's wait for catboost on up to 10k rows).
    Oblivious trees are weak learners whose validation loss plateaus for long stretches: a
    single fit (80/20 of the benchmark's training rows; 5 datasets, not adult, x 3 outer
    splits) waiting 300 instead of 60 iterations scored better on 10 of 15 and equal on the
    rest (segment logloss 6-7 %, bikeshare RMSE 0.5-2 %, california 0.2-0.7 %, abalone 0.5 % on
    one split), for 1.3-3x the fit time."""
    return _common.patience(learning_rate, 15.0, 20, 300)


def max_iterations(spec: ProblemSpec) -> int:
    """The iteration cap: ``MAX_ITERATIONS``, shrunk for many classes (at least 1000)."""
    if spec.n_classes <= MANY_CLASSES:
        return MAX_ITERATIONS
    return max(1000, MAX_ITERATIONS * MANY_CLASSES // spec.n_classes)


def categorical_codes(values: np.ndarray) -> np.ndarray:
    """Ordinal float codes (NaN = missing) as int64, missing -> ``MISSING_CODE``."""
    return np.where(np.isnan(values), MISSING_CODE, values).astype(np.int64)


def _pool(X: FeatureMatrix, label: np.ndarray | None, threads: int) -> catboost.Pool:
    """A float32 matrix as is, or a frame with int code columns when some are categorical."""
    cats = [i for i, is_cat in enumerate(X.categorical) if is_cat]
    if not cats:
        return catboost.Pool(X.values, label=label, thread_count=threads)
    frame = pd.DataFrame(X.values, columns=[str(i) for i in range(X.values.shape[1])])
    for i in cats:
        frame[str(i)] = categorical_codes(X.values[:, i])
    return catboost.Pool(frame, label=label, cat_features=cats, thread_count=threads)


def catboost_params(
    params: Mapping[str, Any],
    spec: ProblemSpec,
    device: Device,
    seed: int,
    threads: int,
    early_stopping: bool,
) -> dict[str, Any]:
    """Training params for ``catboost.CatBoost``: the tree keys of ``params`` plus loss, seed,
    threads, device and (with a validation set) early stopping on it."""
    out: dict[str, Any] = {k: params[k] for k in TREE_KEYS if params.get(k) is not None}
    out |= {
        "loss_function": LOSSES[spec.kind],
        "iterations": int(params.get("iterations") or max_iterations(spec)),
        "random_seed": int(seed),
        "thread_count": threads,
        "allow_writing_files": False,
        "verbose": False,
    }
    if spec.is_classification:
        out["class_names"] = list(range(spec.n_classes))
    if device.startswith("cuda"):
        out |= {"task_type": "GPU", "devices": "0"}
    if early_stopping:
        lr = float(params.get("learning_rate", 0.05))
        wait = int(params.get("od_wait") or patience(lr))
        out |= {"od_type": "Iter", "od_wait": wait, "use_best_model": True}
    return out


class _TimeCheck:
    """Calls the search's time check after every iteration, and stops training (keeping the
    trees so far) once the search's ``budget.fit_limit_s`` has passed. catboost wraps an
    exception raised in a callback into a CatBoostError, so the check's exception is kept in
    ``error`` and training stopped, for ``fit`` to raise it again."""

    def __init__(self) -> None:
        self.error: Exception | None = None
        limit = fit_limit_s()
        self.stop_at = math.inf if limit is None else time.monotonic() + limit

    def after_iteration(self, info: Any) -> bool:
        if time.monotonic() > self.stop_at:
            stopped_at_limit()
            return False
        try:
            check_time()
        except Exception as exc:  # OutOfTime: must leave fit as itself
            self.error = exc
            return False
        return True


@dataclass
class CatBoostModel:
    """A trained catboost model (already cut to its best iteration when early-stopped),
    predicting on ``threads`` CPU threads (``FamilyOptions.threads``; None: all cores)."""

    model: catboost.CatBoost
    spec: ProblemSpec
    threads: int | None = None
    family: str = "catboost"

    @property
    def best_iteration(self) -> int:
        """The last iteration kept (0-based): the model's tree count - 1."""
        return int(self.model.tree_count_) - 1

    def predict_raw(self, X: FeatureMatrix) -> np.ndarray:
        """Class probabilities (n, K) or regression values (n,)."""
        threads = _common.n_threads(None, self.threads)
        kind = "Probability" if self.spec.is_classification else "RawFormulaVal"
        pool = _pool(X, None, threads)
        pred = self.model.predict(pool, prediction_type=kind, thread_count=threads)
        return np.asarray(pred, dtype=np.float64)

    def to_files(self) -> dict[str, bytes]:
        """Native CBM model bytes and a JSON meta (no pickle)."""
        with tempfile.TemporaryDirectory(prefix="tabstream-catboost-") as tmp:
            path = Path(tmp) / MODEL_FILE
            self.model.save_model(str(path), format="cbm")
            blob = path.read_bytes()
        meta = _common.spec_meta(self.spec) | {"best_iteration": self.best_iteration}
        return {MODEL_FILE: blob, META_FILE: _common.dump_json(meta)}


def default_bootstrap(spec: ProblemSpec) -> dict[str, Any]:
    """catboost's own CPU default bootstrap: MVS (importance-sampled rows, 0.8) for binary
    classification and regression, Bayesian at temperature 1 for multiclass. A Bayesian
    bootstrap on adult (binary), the default here before, scored 5-fold OOF AUC 0.92760 against
    MVS's 0.92954 (test 0.92726 against 0.92932) and Bernoulli's at 0.8 0.92851 (0.92812)
    (lr 0.105, fits cut at 15 s, one outer split)."""
    if spec.kind == "multiclass":
        return {"bootstrap_type": "Bayesian", "bagging_temperature": 1.0}
    return {"bootstrap_type": "MVS", "subsample": 0.8}


def _bootstrap(trial: optuna.Trial) -> dict[str, Any]:
    """Bayesian bootstrap with a sampled ``bagging_temperature``, or Bernoulli or MVS row
    sampling with a sampled ``subsample``; the other key is None (catboost refuses it)."""
    kind = trial.suggest_categorical("bootstrap_type", ["Bayesian", "Bernoulli", "MVS"])
    if kind != "Bayesian":
        subsample = trial.suggest_float("subsample", 0.5, 1.0)
        return {"bootstrap_type": kind, "subsample": subsample, "bagging_temperature": None}
    temperature = trial.suggest_float("bagging_temperature", 0.0, 2.0)
    return {"bootstrap_type": "Bayesian", "bagging_temperature": temperature, "subsample": None}


class CatBoostFamily:
    """Gradient-boosted oblivious trees (catboost), with early stopping on the validation set."""

    name = "catboost"
    preprocessing: PreprocessingKind = "tree"

    def __init__(self, options: FamilyOptions | None = None) -> None:
        self.options = options or FamilyOptions()

    def available(self) -> str | None:
        """Always usable (this module imports catboost)."""
        return None

    def supports(self, spec: ProblemSpec, device: Device) -> bool:
        """All task kinds, on CPU and CUDA."""
        return True

    def default_params(self, spec: ProblemSpec) -> dict[str, Any]:
        """AutoGluon's: lr 0.05, depth 6, l2 3, up to ``max_iterations`` with early stopping
        (lr 0.1 for many classes), with catboost's own CPU defaults for the other sampled keys
        (``default_bootstrap`` among them)."""
        lr = 0.1 if spec.n_classes > MANY_CLASSES else 0.05
        return {
            "learning_rate": lr,
            "depth": 6,
            "l2_leaf_reg": 3.0,
            "random_strength": 1.0,
            **default_bootstrap(spec),
            "one_hot_max_size": 2,
            "iterations": max_iterations(spec),
            "od_wait": patience(lr),
        }

    def suggest(self, trial: optuna.Trial, spec: ProblemSpec) -> dict[str, Any]:
        """Sample the search space (learning rate and leaf regularisation on log scales)."""
        lr = trial.suggest_float("learning_rate", 0.01, 0.3, log=True)
        return {
            "learning_rate": lr,
            "depth": trial.suggest_int("depth", 4, 10),
            "l2_leaf_reg": trial.suggest_float("l2_leaf_reg", 1.0, 30.0, log=True),
            "random_strength": trial.suggest_float("random_strength", 0.1, 10.0, log=True),
            **_bootstrap(trial),
            "one_hot_max_size": trial.suggest_categorical("one_hot_max_size", [2, 4, 10]),
            "iterations": max_iterations(spec),
            "od_wait": patience(lr),
        }

    def portfolio(self, spec: ProblemSpec) -> list[dict[str, Any]]:
        """Three configs around the defaults: deep trees with little leaf regularisation (many
        interacting features), shallow trees with more random strength (near-additive, noisy
        targets), and strongly regularised medium trees on row subsamples (small data)."""
        return [
            {
                "learning_rate": 0.04,
                "depth": 8,
                "l2_leaf_reg": 1.0,
                "random_strength": 1.0,
                "bootstrap_type": "Bernoulli",
                "subsample": 0.8,
                "one_hot_max_size": 4,
            },
            {
                "learning_rate": 0.08,
                "depth": 4,
                "l2_leaf_reg": 5.0,
                "random_strength": 2.0,
                "bootstrap_type": "Bayesian",
                "bagging_temperature": 0.5,
                "one_hot_max_size": 10,
            },
            {
                "learning_rate": 0.03,
                "depth": 6,
                "l2_leaf_reg": 10.0,
                "random_strength": 0.3,
                "bootstrap_type": "Bernoulli",
                "subsample": 0.66,
                "one_hot_max_size": 2,
            },
        ]

    def hastened(
        self, params: Mapping[str, Any], slowdown: float, spec: ProblemSpec
    ) -> dict[str, Any]:
        """``params`` with a learning rate raised by the factor its fit is expected to outlast
        the per-fit limit (``slowdown`` at the default rate, scaled by default rate / its
        rate: boosting needs about 1 / lr rounds to converge), at most ``MAX_HASTE`` times and
        ``MAX_HASTENED_RATE``, and the early-stopping wait for the new rate. Measured: on
        bikeshare (5 folds of 6,916 rows, waits of 300 and 100 iterations) lr 0.15 trains 4.1 x
        faster than 0.05 (14 s vs 58 s) for a 2.4 % worse CV RMSE; on segment under a 3 s
        per-fit limit, lr 0.05 cut short scored CV logloss 0.086 and lr 0.15 0.071."""
        lr = float(params["learning_rate"])
        default_lr = float(self.default_params(spec)["learning_rate"])
        factor = min(MAX_HASTE, slowdown * default_lr / lr)
        if factor <= 1.0 or lr >= MAX_HASTENED_RATE:
            return dict(params)
        fast = min(MAX_HASTENED_RATE, lr * factor)
        return {**params, "learning_rate": fast, "od_wait": patience(fast)}

    def fit(
        self,
        X: FeatureMatrix,
        y: np.ndarray,
        X_val: FeatureMatrix | None,
        y_val: np.ndarray | None,
        params: Mapping[str, Any],
        spec: ProblemSpec,
        device: Device,
        seed: int,
    ) -> CatBoostModel:
        """Train ``catboost.CatBoost``; early stopping when a validation set is given. An
        ``OutOfTime`` from the time check leaves as itself."""
        threads = _common.n_threads(params, self.options.threads)
        eval_set = None if X_val is None or y_val is None else _pool(X_val, y_val, threads)
        early = eval_set is not None
        model = catboost.CatBoost(catboost_params(params, spec, device, seed, threads, early))
        timed = has_time_check() or fit_limit_s() is not None
        check = _TimeCheck() if timed and not device.startswith("cuda") else None
        model.fit(_pool(X, y, threads), eval_set=eval_set, callbacks=[check] if check else None)
        if check is not None and check.error is not None:
            raise check.error
        return CatBoostModel(model, spec, self.options.threads)

    def full_data_params(
        self, params: Mapping[str, Any], fold_models: Sequence[FittedModel]
    ) -> dict[str, Any] | None:
        """The iterations early stopping kept, averaged over folds and scaled up for the extra
        rows (x ``FULL_DATA_ROUNDS``); no early stopping."""
        sizes = [m.best_iteration + 1 for m in fold_models if isinstance(m, CatBoostModel)]
        if len(sizes) != len(fold_models) or not sizes:
            return None
        n = _common.full_data_rounds(sizes)
        return {**params, "iterations": n, "od_wait": None}

    def load(self, files: Mapping[str, bytes], spec: ProblemSpec) -> CatBoostModel:
        """Rebuild from the CBM bytes and JSON meta."""
        _common.check_spec(_common.load_json(files[META_FILE]), spec)
        model = catboost.CatBoost()
        model.load_model(blob=bytes(files[MODEL_FILE]))
        return CatBoostModel(model, spec, self.options.threads)
