"""Random forests and extremely randomised trees (scikit-learn): two families on one base.

Both train on CPU (CUDA workers included) on the "tree" preprocessing as is: scikit-learn >= 1.6
splits on NaN natively, and ordinal category codes suit trees. No early stopping; under a time
budget the forest grows in ``TIME_CHECK_CHUNKS`` chunks (``warm_start``: the same trees as one
fit), with a time check after each. Saved without pickle: the trees' node arrays in one
safetensors file plus a JSON meta, which ``rebuild_forest`` turns back into the estimators.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import numpy as np
import optuna
import sklearn
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save
from sklearn import ensemble
from sklearn.base import clone
from sklearn.ensemble._forest import BaseForest
from sklearn.tree import DecisionTreeRegressor
from sklearn.tree._tree import Tree

from tabstream.pipeline.families import _common
from tabstream.pipeline.options import FamilyOptions
from tabstream.pipeline.search.budget import check_time, has_time_check
from tabstream.pipeline.types import Device, FeatureMatrix, FittedModel, ProblemSpec

MODEL_FILE = "model.safetensors"
META_FILE = "meta.json"
N_ESTIMATORS = 300
MAX_LEAF_NODES = 2048
"""Leaves per tree: bounds a saved model to about 300 x 4095 nodes x 44 bytes (binclass) on large
data; trees on a few thousand rows stay whole."""
TIME_CHECK_CHUNKS = 8
MAX_FEATURES: list[str | float] = ["sqrt", 0.5, 0.75, 1.0]
NARROWER = {np.dtype(np.int64): (np.int8, np.int16, np.int32), np.dtype(np.float64): (np.float32,)}
PORTFOLIO_KEYS = ("max_features", "min_samples_leaf", "criterion")
PORTFOLIOS: dict[tuple[str, bool], list[tuple[Any, ...]]] = {  # (family, classification): rows
    ("extratrees", True): [(0.75, 1, "entropy"), ("sqrt", 3, "gini")],
    ("extratrees", False): [(0.5, 1), (1.0, 3)],
    ("randomforest", True): [(0.5, 1, "entropy"), ("sqrt", 5, "gini")],
    ("randomforest", False): [(0.5, 1), (0.75, 5)],
}
_ESTIMATORS: dict[tuple[str, bool], type[BaseForest]] = {
    ("extratrees", True): ensemble.ExtraTreesClassifier,
    ("extratrees", False): ensemble.ExtraTreesRegressor,
    ("randomforest", True): ensemble.RandomForestClassifier,
    ("randomforest", False): ensemble.RandomForestRegressor,
}


@cache
def node_dtype() -> np.dtype:
    """The structured dtype this scikit-learn's ``Tree`` keeps its nodes in."""
    tree = DecisionTreeRegressor().fit([[0.0], [1.0]], [0.0, 1.0]).tree_
    dtype: np.dtype = tree.__getstate__()["nodes"].dtype
    return dtype


def _layout(dtype: np.dtype) -> list[list[str]]:
    return [[name, dtype.fields[name][0].str] for name in dtype.names or ()]  # type: ignore[index]


def _narrowest(array: np.ndarray) -> np.ndarray:
    """``array`` in the smallest dtype of its kind that holds every value exactly."""
    for dtype in NARROWER.get(array.dtype, ()):
        with np.errstate(over="ignore", invalid="ignore"):
            small = array.astype(dtype)
        if small.astype(array.dtype).tobytes() == array.tobytes():
            return small
    return array


def forest_arrays(forest: BaseForest) -> dict[str, np.ndarray]:
    """The trees' states as plain arrays: node fields and values concatenated over the trees,
    with per-tree ``node_count``, ``max_depth`` and ``random_state``."""
    states = [est.tree_.__getstate__() for est in forest.estimators_]
    nodes = np.concatenate([s["nodes"] for s in states])
    out = {f"nodes.{name}": _narrowest(nodes[name].copy()) for name in nodes.dtype.names or ()}
    out["values"] = _narrowest(np.concatenate([s["values"] for s in states]))
    out["node_count"] = np.array([s["node_count"] for s in states], dtype=np.int64)
    out["max_depth"] = np.array([s["max_depth"] for s in states], dtype=np.int64)
    out["random_state"] = np.array([e.random_state for e in forest.estimators_], dtype=np.int64)
    return out


def rebuild_forest(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> BaseForest:
    """Rebuild a fitted forest from ``forest_arrays`` and its meta (``ForestModel.to_files``)
    the way unpickling does: each ``Tree`` is made with ``Tree(n_features, n_classes,
    n_outputs)`` and filled by ``Tree.__setstate__`` with its nodes (a structured array in the
    exact ``node_dtype``) and values; each tree estimator is the forest's template with the
    forest's tree params and gets the attributes ``fit`` sets. This leans on scikit-learn's pickle
    protocol, not a public API: a saved node layout other than this scikit-learn's is refused
    with a ValueError, and a model saved by another version (same layout) is warned about."""
    _check_layout(meta)
    forest = _ESTIMATORS[(meta["family"], meta["classes"] is not None)](**meta["params"])
    forest.estimator_ = clone(forest.estimator)
    n_classes = len(meta["classes"] or [None])
    tree_params = {p: getattr(forest, p) for p in forest.estimator_params}
    forest.estimators_ = []
    for i, end in enumerate(np.cumsum(arrays["node_count"]).tolist()):
        seed = {"random_state": int(arrays["random_state"][i])}
        estimator = clone(forest.estimator_).set_params(**tree_params | seed)
        estimator.n_features_in_, estimator.n_outputs_ = meta["n_features"], 1
        estimator.max_features_ = meta["tree_max_features"]
        estimator.tree_ = _tree(arrays, slice(end - int(arrays["node_count"][i]), end), i, meta)
        if meta["classes"] is not None:
            estimator.classes_ = np.arange(n_classes, dtype=np.float64)
            estimator.n_classes_ = np.int64(n_classes)
        forest.estimators_.append(estimator)
    forest.n_features_in_, forest.n_outputs_ = meta["n_features"], 1
    if meta["classes"] is not None:
        forest.classes_, forest.n_classes_ = np.array(meta["classes"], dtype=np.int64), n_classes
    return forest


def _check_layout(meta: Mapping[str, Any]) -> None:
    saved, version = meta["node_layout"], meta["sklearn_version"]
    if saved != _layout(node_dtype()):
        raise ValueError(
            f"saved forest nodes have scikit-learn {version}'s layout {saved}; scikit-learn "
            f"{sklearn.__version__} expects {_layout(node_dtype())}: refit the model or install "
            f"scikit-learn=={version}"
        )
    if version != sklearn.__version__:
        msg = f"forest saved by scikit-learn {version}, loaded by {sklearn.__version__}"
        warnings.warn(msg, stacklevel=3)


def _tree(arrays: Mapping[str, np.ndarray], rows: slice, i: int, meta: Mapping[str, Any]) -> Tree:
    """Tree ``i`` (nodes ``rows`` of the concatenated arrays), through ``Tree.__setstate__``."""
    nodes = np.zeros(rows.stop - rows.start, dtype=node_dtype())
    for name in node_dtype().names or ():
        nodes[name] = arrays[f"nodes.{name}"][rows]
    n_classes = np.array([len(meta["classes"] or [None])], dtype=np.intp)
    tree = Tree(meta["n_features"], n_classes, 1)
    values = np.ascontiguousarray(arrays["values"][rows], dtype=np.float64)
    state = {"max_depth": int(arrays["max_depth"][i]), "node_count": len(nodes)}
    tree.__setstate__(state | {"nodes": nodes, "values": values})
    return tree


def _mean_over_trees(trees: list[Any], method: str, X: np.ndarray, threads: int) -> np.ndarray:
    """The trees' mean ``method`` (``predict``, ``predict_proba``) on ``X``, summed in tree order
    as scikit-learn does with one job (its parallel sum follows thread timing, so is not
    reproducible); ``threads`` trees at a time."""
    total: np.ndarray | float = 0.0
    with ThreadPoolExecutor(threads) as pool:
        for start in range(0, len(trees), 4 * threads):
            batch = trees[start : start + 4 * threads]
            for pred in pool.map(lambda t: getattr(t, method)(X, check_input=False), batch):
                total = total + pred
    return np.asarray(total) / len(trees)


@dataclass
class ForestModel:
    """A fitted scikit-learn forest; predicts on ``threads`` CPU threads (None: all cores)."""

    forest: BaseForest
    spec: ProblemSpec
    family: str
    threads: int | None = None

    def predict_raw(self, X: FeatureMatrix) -> np.ndarray:
        """Class probabilities (n, K) padded to the spec's classes, or regression values (n,)."""
        values = np.ascontiguousarray(X.values, dtype=np.float32)
        method = "predict_proba" if self.spec.is_classification else "predict"
        threads = _common.n_threads(None, self.threads)
        pred = _mean_over_trees(self.forest.estimators_, method, values, threads)
        if self.spec.is_classification:
            return _common.pad_proba(pred, self.forest.classes_, self.spec.n_classes)
        return pred.astype(np.float64)

    def to_files(self) -> dict[str, bytes]:
        """Node arrays as safetensors and a JSON meta (no pickle)."""
        forest = self.forest
        meta = _common.spec_meta(self.spec) | {
            "family": self.family,
            "sklearn_version": sklearn.__version__,
            "node_layout": _layout(forest.estimators_[0].tree_.__getstate__()["nodes"].dtype),
            "params": forest.get_params(deep=False),
            "classes": forest.classes_.tolist() if self.spec.is_classification else None,
            "n_features": int(forest.n_features_in_),
            "tree_max_features": int(forest.estimators_[0].max_features_),
        }
        return {MODEL_FILE: st_save(forest_arrays(forest)), META_FILE: _common.dump_json(meta)}


class _ForestFamily:
    """What the two forest families share; a subclass names itself and sets ``bootstrap``."""

    name: str
    bootstrap: bool
    preprocessing: Literal["tree"] = "tree"

    def __init__(self, options: FamilyOptions | None = None) -> None:
        self.options = options or FamilyOptions()

    def available(self) -> str | None:
        """Always usable: scikit-learn is a hard dependency."""
        return None

    def supports(self, spec: ProblemSpec, device: Device) -> bool:
        """All task kinds on any device (training runs on CPU even on a CUDA worker)."""
        return True

    def default_params(self, spec: ProblemSpec) -> dict[str, Any]:
        """AutoGluon's defaults: 300 trees, sqrt (classification) or all (regression) features
        per split, leaves of one row; at most ``MAX_LEAF_NODES`` leaves per tree."""
        return {
            "n_estimators": N_ESTIMATORS,
            "max_features": "sqrt" if spec.is_classification else 1.0,
            "min_samples_leaf": 1,
            "criterion": "gini" if spec.is_classification else "squared_error",
            "max_leaf_nodes": MAX_LEAF_NODES,
        }

    def suggest(self, trial: optuna.Trial, spec: ProblemSpec) -> dict[str, Any]:
        """Sample features per split, leaf size (log scale) and, for classification, the split
        criterion; the number of trees and the leaf cap stay fixed."""
        params = self.default_params(spec)
        params["max_features"] = trial.suggest_categorical("max_features", MAX_FEATURES)
        params["min_samples_leaf"] = trial.suggest_int("min_samples_leaf", 1, 10, log=True)
        if spec.is_classification:
            params["criterion"] = trial.suggest_categorical("criterion", ["gini", "entropy"])
        return params

    def portfolio(self, spec: ProblemSpec) -> list[dict[str, Any]]:
        """Two known-good configs per family and task kind (``PORTFOLIOS``): more features per
        split with leaves of one row, and a more regularised forest."""
        rows = PORTFOLIOS[(self.name, spec.is_classification)]
        return [dict(zip(PORTFOLIO_KEYS, row, strict=False)) for row in rows]

    def _estimator(self, params: Mapping[str, Any], spec: ProblemSpec, seed: int) -> BaseForest:
        kwargs = {key: params.get(key, value) for key, value in self.default_params(spec).items()}
        kwargs |= {"bootstrap": self.bootstrap, "random_state": seed % 2**32, "warm_start": True}
        kwargs["n_jobs"] = _common.n_threads(params, self.options.threads)
        return _ESTIMATORS[(self.name, spec.is_classification)](**kwargs)

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
    ) -> ForestModel:
        """Grow the forest on CPU (no early stopping: the validation set is unused); in chunks
        with a time check between them when the search has one."""
        forest = self._estimator(params, spec, seed)
        chunks = TIME_CHECK_CHUNKS if has_time_check() else 1
        ends = np.linspace(0, forest.n_estimators, chunks + 1).round().astype(int)[1:]
        for size in np.unique(ends):
            forest.set_params(n_estimators=int(size))
            forest.fit(X.values, y)
            check_time()
        forest.set_params(warm_start=False)
        return ForestModel(forest, spec, self.name, self.options.threads)

    def full_data_params(
        self, params: Mapping[str, Any], fold_models: Sequence[FittedModel]
    ) -> dict[str, Any] | None:
        """The same params: a forest has no size learnt by early stopping."""
        return dict(params)

    def load(self, files: Mapping[str, bytes], spec: ProblemSpec) -> ForestModel:
        """Rebuild from the safetensors node arrays and JSON meta (``rebuild_forest``)."""
        meta = _common.load_json(files[META_FILE])
        _common.check_spec(meta, spec)
        if meta["family"] != self.name:
            raise ValueError(f"saved model is a {meta['family']} forest, not {self.name}")
        forest = rebuild_forest(meta, st_load(files[MODEL_FILE]))
        forest.set_params(n_jobs=_common.n_threads(None, self.options.threads))
        return ForestModel(forest, spec, self.name, self.options.threads)


class ExtraTreesFamily(_ForestFamily):
    """Extremely randomised trees: random split thresholds, no bootstrap."""

    name = "extratrees"
    bootstrap = False


class RandomForestFamily(_ForestFamily):
    """Random forest: best splits on bootstrap samples."""

    name = "randomforest"
    bootstrap = True
