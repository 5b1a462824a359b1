"""XGBoost family: hist trees via the native ``xgboost.train`` API on a QuantileDMatrix.

Categorical columns (ordinal codes from the "tree" preprocessing) are declared with
``feature_types="c"``; NaN is missing. Saved as the booster's UBJ bytes plus a JSON meta.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import xgboost as xgb

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

MODEL_FILE = "model.ubj"
META_FILE = "meta.json"
OBJECTIVES = {
    "binclass": "binary:logistic",
    "multiclass": "multi:softprob",
    "regression": "reg:squarederror",
}
BOOSTER_KEYS = (
    "learning_rate",
    "grow_policy",
    "max_depth",
    "max_leaves",
    "min_child_weight",
    "subsample",
    "colsample_bytree",
    "reg_lambda",
    "reg_alpha",
)


def _tree_shape(trial: optuna.Trial) -> dict[str, Any]:
    """Depthwise trees with a sampled ``max_depth``, or lossguide trees with sampled
    ``max_leaves`` and no depth limit."""
    if trial.suggest_categorical("grow_policy", ["depthwise", "lossguide"]) == "lossguide":
        leaves = trial.suggest_int("max_leaves", 8, 256, log=True)
        return {"grow_policy": "lossguide", "max_leaves": leaves, "max_depth": 0}
    return {"grow_policy": "depthwise", "max_depth": trial.suggest_int("max_depth", 3, 10)}


def _feature_types(X: FeatureMatrix) -> list[str]:
    return ["c" if cat else "q" for cat in X.categorical]


def _dmatrix(X: FeatureMatrix, threads: int | None) -> xgb.DMatrix:
    # nthread: the default (all cores) costs ~3x more CPU per call on a busy machine
    return xgb.DMatrix(
        X.values,
        feature_types=_feature_types(X),
        enable_categorical=any(X.categorical),
        nthread=n_threads(None, threads),
    )


def _booster_params(
    params: Mapping[str, Any], spec: ProblemSpec, device: Device, seed: int, threads: int | None
) -> dict[str, Any]:
    out: dict[str, Any] = {k: params[k] for k in BOOSTER_KEYS if k in params}
    out |= {
        "objective": OBJECTIVES[spec.kind],
        "tree_method": "hist",
        "device": "cuda" if device.startswith("cuda") else "cpu",
        "nthread": n_threads(params, threads),
        "seed": seed,
        "max_cat_to_onehot": params.get("max_cat_to_onehot", 4),
    }
    if spec.kind == "multiclass":
        out["num_class"] = spec.n_classes
    return out


class _TimeCheck(xgb.callback.TrainingCallback):
    """Calls the search's time check after every boosting round (``budget``)."""

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        check_time()
        return False


@dataclass
class XGBoostModel:
    """A trained booster; predicts with the trees up to ``best_iteration``, on ``threads`` CPU
    threads (``FamilyOptions.threads``; None: all cores)."""

    booster: xgb.Booster
    spec: ProblemSpec
    best_iteration: int
    threads: int | None = None
    family: str = "xgboost"

    def predict_raw(self, X: FeatureMatrix) -> np.ndarray:
        """Class probabilities (n, K) or regression values (n,)."""
        dmatrix = _dmatrix(X, self.threads)
        pred = self.booster.predict(dmatrix, iteration_range=(0, self.best_iteration + 1))
        pred = np.asarray(pred, dtype=np.float64)
        if self.spec.kind == "binclass":
            return np.column_stack([1.0 - pred, pred])
        return pred

    def to_files(self) -> dict[str, bytes]:
        """UBJ booster bytes and a JSON meta (no pickle)."""
        meta = spec_meta(self.spec) | {"best_iteration": self.best_iteration}
        return {MODEL_FILE: bytes(self.booster.save_raw("ubj")), META_FILE: dump_json(meta)}


class XGBoostFamily:
    """Gradient-boosted trees (xgboost, hist), with early stopping on the validation set."""

    name = "xgboost"
    preprocessing: PreprocessingKind = "tree"

    def __init__(self, options: FamilyOptions | None = None) -> None:
        self.options = options or FamilyOptions()

    def available(self) -> str | None:
        """Always usable: xgboost is a hard dependency."""
        return None

    def supports(self, spec: ProblemSpec, device: Device) -> bool:
        """All task kinds, on CPU and CUDA."""
        return True

    def default_params(self, spec: ProblemSpec) -> dict[str, Any]:
        """Well-known defaults: lr 0.1, depth 6, up to 1000 rounds with early stopping."""
        return {
            "learning_rate": 0.1,
            "grow_policy": "depthwise",
            "max_depth": 6,
            "min_child_weight": 1.0,
            "subsample": 0.8,
            "colsample_bytree": 0.8,
            "reg_lambda": 1.0,
            "reg_alpha": 1e-3,
            "n_estimators": 1000,
            "early_stopping_rounds": patience(0.1),
        }

    def suggest(self, trial: optuna.Trial, spec: ProblemSpec) -> dict[str, Any]:
        """Sample the search space (learning rate and regularisation on log scales). Trees grow
        level by level to a ``max_depth``, or leaf by leaf to ``max_leaves`` (lossguide, as
        LightGBM does: uneven trees that spend their leaves where the loss falls most)."""
        lr = trial.suggest_float("learning_rate", 0.01, 0.3, log=True)
        return {
            "learning_rate": lr,
            **_tree_shape(trial),
            "min_child_weight": trial.suggest_float("min_child_weight", 0.01, 20.0, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 100.0, log=True),
            "reg_alpha": trial.suggest_float("reg_alpha", 1e-3, 10.0, log=True),
            "n_estimators": 2000,
            "early_stopping_rounds": patience(lr),
        }

    def portfolio(self, spec: ProblemSpec) -> list[dict[str, Any]]:
        """Three configs around the defaults: lossguide trees of 48 leaves with a little L1
        (uneven interactions, such as hour x working day in demand data), deeper depthwise trees
        with little leaf regularisation (separable classes), and shallow, strongly regularised
        trees (noisy targets, small data)."""
        return [
            {
                "learning_rate": 0.05,
                "grow_policy": "lossguide",
                "max_leaves": 48,
                "min_child_weight": 0.05,
                "subsample": 0.8,
                "colsample_bytree": 0.8,
                "reg_lambda": 0.1,
                "reg_alpha": 1.0,
            },
            {
                "learning_rate": 0.05,
                "grow_policy": "depthwise",
                "max_depth": 8,
                "min_child_weight": 0.1,
                "subsample": 0.9,
                "colsample_bytree": 0.7,
                "reg_lambda": 1.0,
                "reg_alpha": 0.001,
            },
            {
                "learning_rate": 0.1,
                "grow_policy": "depthwise",
                "max_depth": 4,
                "min_child_weight": 3.0,
                "subsample": 0.7,
                "colsample_bytree": 0.9,
                "reg_lambda": 10.0,
                "reg_alpha": 0.1,
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
    ) -> XGBoostModel:
        """Train with ``xgboost.train``; early stopping when a validation set is given."""
        cat = any(X.categorical)
        dtrain = xgb.QuantileDMatrix(
            X.values, label=y, feature_types=_feature_types(X), enable_categorical=cat
        )
        evals: list[tuple[xgb.DMatrix, str]] = []
        if X_val is not None and y_val is not None:
            dval = xgb.QuantileDMatrix(
                X_val.values,
                label=y_val,
                feature_types=_feature_types(X_val),
                enable_categorical=cat,
                ref=dtrain,
            )
            evals = [(dval, "val")]
        rounds = int(params.get("n_estimators", 1000))
        booster = xgb.train(
            _booster_params(params, spec, device, seed, self.options.threads),
            dtrain,
            num_boost_round=rounds,
            evals=evals,
            early_stopping_rounds=int(params.get("early_stopping_rounds", 50)) if evals else None,
            verbose_eval=False,
            callbacks=[_TimeCheck()] if has_time_check() else None,
        )
        best = int(booster.best_iteration) if evals else rounds - 1
        return XGBoostModel(booster, spec, best, self.options.threads)

    def full_data_params(
        self, params: Mapping[str, Any], fold_models: Sequence[FittedModel]
    ) -> dict[str, Any] | None:
        """The rounds early stopping chose, averaged over folds and scaled up for the extra rows
        (x ``FULL_DATA_ROUNDS``); no early stopping."""
        rounds = [m.best_iteration + 1 for m in fold_models if isinstance(m, XGBoostModel)]
        if len(rounds) != len(fold_models) or not rounds:
            return None
        n = full_data_rounds(rounds)
        return {**params, "n_estimators": n, "early_stopping_rounds": None}

    def load(self, files: Mapping[str, bytes], spec: ProblemSpec) -> XGBoostModel:
        """Rebuild from the UBJ bytes and JSON meta."""
        meta = load_json(files[META_FILE])
        check_spec(meta, spec)
        booster = xgb.Booster()
        booster.load_model(bytearray(files[MODEL_FILE]))
        booster.set_param({"nthread": n_threads(None, self.options.threads)})
        return XGBoostModel(booster, spec, int(meta["best_iteration"]), self.options.threads)
