"""LightGBM family: leaf-wise histogram trees via the native ``lightgbm.train`` API.

Categorical columns (ordinal codes from the "tree" preprocessing) are passed as
``categorical_feature``; NaN is missing. Training is deterministic for a seed
(``deterministic``, ``force_col_wise``). Saved as the booster's text model (trimmed to the
early-stopped rounds) plus a JSON meta; never pickle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import optuna

from tabstream.pipeline.families._common import (
    check_spec,
    dump_json,
    full_data_rounds,
    load_json,
    n_threads,
    patience,
    spec_meta,
)
from tabstream.pipeline.options import FamilyOptions
from tabstream.pipeline.search.budget import check_time, has_time_check
from tabstream.pipeline.types import (
    Device,
    FeatureMatrix,
    FittedModel,
    PreprocessingKind,
    ProblemSpec,
)

MODEL_FILE = "model.txt"
META_FILE = "meta.json"
OBJECTIVES = {"binclass": "binary", "multiclass": "multiclass", "regression": "regression"}
MAX_ROUNDS = 10_000
BOOSTER_KEYS = (
    "learning_rate",
    "num_leaves",
    "min_data_in_leaf",
    "feature_fraction",
    "bagging_fraction",
    "bagging_freq",
    "lambda_l1",
    "lambda_l2",
    "extra_trees",
    "cat_smooth",
    "max_cat_to_onehot",
)


def _booster_params(
    params: Mapping[str, Any], spec: ProblemSpec, seed: int, threads: int | None
) -> dict[str, Any]:
    out: dict[str, Any] = {k: params[k] for k in BOOSTER_KEYS if k in params}
    out |= {
        "objective": OBJECTIVES[spec.kind],
        "deterministic": True,
        "force_col_wise": True,
        "verbosity": -1,
        "seed": seed,
        "num_threads": n_threads(params, threads),
    }
    if spec.kind == "multiclass":
        out["num_class"] = spec.n_classes  # labels are codes 0..K-1: absent classes get ~0
    return out


def _dataset(
    X: FeatureMatrix, y: np.ndarray, params: Mapping[str, Any], reference: lgb.Dataset | None
) -> lgb.Dataset:
    categorical = [i for i, cat in enumerate(X.categorical) if cat]
    return lgb.Dataset(
        X.values,
        label=y,
        categorical_feature=categorical,
        params=dict(params),
        reference=reference,
        free_raw_data=True,
    )


def _time_check(env: lgb.callback.CallbackEnv) -> None:
    """Calls the search's time check after every boosting round (``budget``)."""
    check_time()


def _callbacks(params: Mapping[str, Any], has_val: bool) -> list[Any]:
    callbacks: list[Any] = []
    rounds = params.get("early_stopping_rounds", patience(params.get("learning_rate", 0.1)))
    if has_val and rounds:
        callbacks.append(lgb.early_stopping(int(rounds), first_metric_only=True, verbose=False))
    if has_time_check():
        callbacks.append(_time_check)
    return callbacks


@dataclass
class LightGBMModel:
    """A trained booster of ``n_rounds`` boosting rounds; predicts on ``threads`` CPU threads
    (``FamilyOptions.threads``; None: all cores)."""

    booster: lgb.Booster
    spec: ProblemSpec
    n_rounds: int
    threads: int | None = None
    family: str = "lightgbm"

    def predict_raw(self, X: FeatureMatrix) -> np.ndarray:
        """Class probabilities (n, K) or regression values (n,)."""
        pred = self.booster.predict(
            X.values, num_iteration=self.n_rounds, num_threads=n_threads(None, self.threads)
        )
        pred = np.asarray(pred, dtype=np.float64)
        if self.spec.kind == "binclass":
            return np.column_stack([1.0 - pred, pred])
        return pred

    def to_files(self) -> dict[str, bytes]:
        """The booster's text model (its first ``n_rounds`` rounds) and a JSON meta."""
        text = self.booster.model_to_string(num_iteration=self.n_rounds)
        meta = spec_meta(self.spec) | {"n_rounds": self.n_rounds}
        return {MODEL_FILE: text.encode(), META_FILE: dump_json(meta)}


class LightGBMFamily:
    """Gradient-boosted trees grown leaf-wise (LightGBM), with early stopping on the validation
    set. Trains on CPU on every device: the PyPI wheel has no CUDA build, so on a CUDA worker it
    runs on the worker's CPU threads."""

    name = "lightgbm"
    preprocessing: PreprocessingKind = "tree"

    def __init__(self, options: FamilyOptions | None = None) -> None:
        self.options = options or FamilyOptions()

    def available(self) -> str | None:
        """Always usable: lightgbm is installed with tabstream."""
        return None

    def supports(self, spec: ProblemSpec, device: Device) -> bool:
        """All task kinds on any device (training always runs on the CPU)."""
        return True

    def default_params(self, spec: ProblemSpec) -> dict[str, Any]:
        """AutoGluon's LightGBM defaults: lr 0.05, 31 leaves, 20 rows per leaf, 90% of the
        features per tree, no bagging, up to 10000 rounds with early stopping."""
        return {
            "learning_rate": 0.05,
            "num_leaves": 31,
            "min_data_in_leaf": 20,
            "feature_fraction": 0.9,
            "bagging_fraction": 1.0,
            "bagging_freq": 0,
            "lambda_l1": 1e-3,
            "lambda_l2": 1e-3,
            "extra_trees": False,
            "cat_smooth": 10.0,
            "max_cat_to_onehot": 4,
            "num_boost_round": MAX_ROUNDS,
            "early_stopping_rounds": patience(0.05),
        }

    def suggest(self, trial: optuna.Trial, spec: ProblemSpec) -> dict[str, Any]:
        """Sample the search space (learning rate, tree size and regularisation on log scales).
        Row bagging (every round) is on when ``bagging_fraction`` < 1; ``extra_trees`` draws
        random split thresholds (less variance on noisy data); ``cat_smooth`` and
        ``max_cat_to_onehot`` shape the splits on categorical columns."""
        lr = trial.suggest_float("learning_rate", 0.005, 0.3, log=True)
        bagging = trial.suggest_float("bagging_fraction", 0.5, 1.0)
        return {
            "learning_rate": lr,
            "num_leaves": trial.suggest_int("num_leaves", 8, 256, log=True),
            "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 2, 100, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
            "bagging_fraction": bagging,
            "bagging_freq": 1 if bagging < 1.0 else 0,
            "lambda_l1": trial.suggest_float("lambda_l1", 1e-3, 10.0, log=True),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 100.0, log=True),
            "extra_trees": trial.suggest_categorical("extra_trees", [False, True]),
            "cat_smooth": trial.suggest_float("cat_smooth", 1.0, 100.0, log=True),
            "max_cat_to_onehot": trial.suggest_int("max_cat_to_onehot", 4, 32, log=True),
            "num_boost_round": MAX_ROUNDS,
            "early_stopping_rounds": patience(lr),
        }

    def portfolio(self, spec: ProblemSpec) -> list[dict[str, Any]]:
        """Three configs around the defaults: AutoGluon's "XT" variant (the defaults with
        extra trees: random thresholds, robust on noisy data), AutoGluon's "Large" variant (128
        leaves of 3+ rows at lr 0.03: complex interactions, larger data), and small, strongly
        regularised trees with bagging (small or noisy data)."""
        base = {
            k: v
            for k, v in self.default_params(spec).items()
            if k not in ("bagging_freq", "num_boost_round", "early_stopping_rounds")
        }
        return [
            base | {"extra_trees": True},
            base | {"learning_rate": 0.03, "num_leaves": 128, "min_data_in_leaf": 3},
            base
            | {
                "num_leaves": 15,
                "min_data_in_leaf": 50,
                "feature_fraction": 0.7,
                "bagging_fraction": 0.8,
                "lambda_l1": 0.1,
                "lambda_l2": 10.0,
                "cat_smooth": 30.0,
            },
        ]

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
    ) -> LightGBMModel:
        """Train with ``lightgbm.train`` on the CPU; early stopping when a validation set is
        given (and ``early_stopping_rounds`` is not None)."""
        booster_params = _booster_params(params, spec, seed, self.options.threads)
        dtrain = _dataset(X, y, booster_params, None)
        valid_sets = []
        if X_val is not None and y_val is not None:
            valid_sets = [_dataset(X_val, y_val, booster_params, dtrain)]
        booster = lgb.train(
            booster_params,
            dtrain,
            num_boost_round=int(params.get("num_boost_round", MAX_ROUNDS)),
            valid_sets=valid_sets,
            valid_names=["val"] if valid_sets else None,
            callbacks=_callbacks(params, bool(valid_sets)),
        )
        n_rounds = int(booster.best_iteration) or int(booster.current_iteration())
        return LightGBMModel(booster, spec, n_rounds, self.options.threads)

    def full_data_params(
        self, params: Mapping[str, Any], fold_models: Sequence[FittedModel]
    ) -> dict[str, Any] | None:
        """The rounds early stopping chose, averaged over folds and scaled up for the extra rows
        (x ``FULL_DATA_ROUNDS``); no early stopping."""
        rounds = [m.n_rounds for m in fold_models if isinstance(m, LightGBMModel)]
        if len(rounds) != len(fold_models) or not rounds:
            return None
        n = full_data_rounds(rounds)
        return {**params, "num_boost_round": n, "early_stopping_rounds": None}

    def load(self, files: Mapping[str, bytes], spec: ProblemSpec) -> LightGBMModel:
        """Rebuild from the text model and JSON meta."""
        meta = load_json(files[META_FILE])
        check_spec(meta, spec)
        booster = lgb.Booster(model_str=files[MODEL_FILE].decode())
        return LightGBMModel(booster, spec, int(meta["n_rounds"]), self.options.threads)
