"""xRFM family: tree-partitioned Recursive Feature Machines (package ``xrfm``).

Inputs are the "nn" preprocessing. xRFM needs a validation set: without one, a seeded 20 %
holdout of the training rows is used. A kernel machine's centres are its training rows, so
saving stores them with the learned tree (split directions, per-leaf weights, M / sqrtM
matrices) as safetensors, and the tree shape and scalars as JSON; no pickle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from xrfm import xRFM

from tabstream.pipeline.families._common import (
    check_spec,
    dump_json,
    load_json,
    n_threads,
    seed_everything,
    spec_meta,
    split_holdout,
    torch_device,
)
from tabstream.pipeline.options import FamilyOptions
from tabstream.pipeline.types import (
    Device,
    FeatureMatrix,
    FittedModel,
    PreprocessingKind,
    ProblemSpec,
)

TENSORS_FILE = "state.safetensors"
CONFIG_FILE = "config.json"
KERNELS = ("l2", "l2_high_dim", "product_laplace")
CONVERTER_KEYS = ("_prior", "_C", "_invA")


def _rfm_params(p: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "model": {
            "kernel": p["kernel"],
            "bandwidth": float(p["bandwidth"]),
            "exponent": float(p["exponent"]),
            "diag": bool(p["diag"]),
            "bandwidth_mode": "constant",
        },
        "fit": {
            "reg": float(p["reg"]),
            "iters": int(p["iters"]),
            "M_batch_size": None,
            "verbose": False,
            "early_stop_rfm": True,
            "return_best_params": True,
        },
    }


def _flatten(node: dict[str, Any], prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Move a param tree's tensors into ``tensors`` (keyed by path); return the JSON skeleton."""
    out: dict[str, Any] = {}
    for key, val in node.items():
        if key in ("left", "right"):
            out[key] = _flatten(val, f"{prefix}.{key[0]}", tensors)
        elif torch.is_tensor(val):
            tensors[f"{prefix}.{key}"] = val.detach().cpu().contiguous()
            out[key] = {"tensor": f"{prefix}.{key}"}
        else:
            out[key] = val
    return out


def _unflatten(
    node: dict[str, Any], tensors: Mapping[str, torch.Tensor], dev: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, val in node.items():
        if key in ("left", "right"):
            out[key] = _unflatten(val, tensors, dev)
        elif isinstance(val, dict) and "tensor" in val:
            out[key] = tensors[val["tensor"]].to(dev)
        else:
            out[key] = val
    return out


def _estimator(p: Mapping[str, Any], device: Device, seed: int | None, threads: int | None) -> xRFM:
    return xRFM(
        rfm_params=_rfm_params(p),
        max_leaf_size=int(p["max_leaf_size"]),
        n_trees=int(p["n_trees"]),
        device=torch_device(device),
        n_threads=n_threads(p, threads),
        random_state=seed,
        verbose=False,
    )


@dataclass
class XRFMModel:
    """A fitted xRFM estimator plus its training centres and y stats."""

    est: xRFM
    x_train: torch.Tensor
    config: dict[str, Any]
    spec: ProblemSpec
    family: str = "xrfm"

    def predict_raw(self, X: FeatureMatrix) -> np.ndarray:
        """Class probabilities (n, K) or regression values (n,)."""
        x = torch.as_tensor(X.values, dtype=torch.float32, device=self.est.device)
        if self.spec.is_classification:
            proba = np.asarray(self.est.predict_proba(x), dtype=np.float64)
            if proba.shape[1] < self.spec.n_classes:
                proba = np.pad(proba, ((0, 0), (0, self.spec.n_classes - proba.shape[1])))
            result: np.ndarray = proba / proba.sum(axis=1, keepdims=True)
            return result
        pred = np.asarray(self.est.predict(x), dtype=np.float64).reshape(len(x))
        values: np.ndarray = pred * self.config["y_std"] + self.config["y_mean"]
        return values

    def to_files(self) -> dict[str, bytes]:
        """safetensors (centres, tree tensors) and a JSON config (no pickle)."""
        state = self.est.get_state_dict()
        tensors: dict[str, torch.Tensor] = {"x_train": self.x_train.cpu().contiguous()}
        trees = [_flatten(t, f"tree{i}", tensors) for i, t in enumerate(state["param_trees"])]
        conv = state.get("class_converter") or {}
        for key in CONVERTER_KEYS:
            if conv.get(key) is not None:
                tensors[f"conv{key}"] = conv[key].cpu().contiguous()
        meta = {k: v for k, v in state.items() if k not in ("param_trees", "class_converter")}
        meta |= {
            "trees": trees,
            "numerical_type": conv.get("_numerical_type"),
            "split_temperature": self.est.split_temperature,
        }
        config = self.config | {"state": meta}
        return {TENSORS_FILE: st_save(tensors), CONFIG_FILE: dump_json(config)}


class XRFMFamily:
    """xRFM (Beaglehole et al.): kernel machines with learned feature matrices on tree leaves."""

    name = "xrfm"
    preprocessing: PreprocessingKind = "nn"

    def __init__(self, options: FamilyOptions | None = None) -> None:
        self.options = options or FamilyOptions()

    def available(self) -> str | None:
        """Always usable: xrfm is a hard dependency."""
        return None

    def supports(self, spec: ProblemSpec, device: Device) -> bool:
        """All task kinds, on CPU and CUDA."""
        return True

    def default_params(self, spec: ProblemSpec) -> dict[str, Any]:
        """xRFM package defaults (l2 kernel, bandwidth 10, 5 iterations, reg 1e-3)."""
        return {
            "kernel": "l2",
            "bandwidth": 10.0,
            "exponent": 1.0,
            "diag": False,
            "reg": 1e-3,
            "iters": 5,
            "max_leaf_size": 60_000,
            "n_trees": 1,
        }

    def suggest(self, trial: optuna.Trial, spec: ProblemSpec) -> dict[str, Any]:
        """Sample kernel, bandwidth, exponent, diagonal M, ridge and RFM iterations."""
        return self.default_params(spec) | {
            "kernel": trial.suggest_categorical("kernel", list(KERNELS)),
            "bandwidth": trial.suggest_float("bandwidth", 1.0, 200.0, log=True),
            "exponent": trial.suggest_float("exponent", 0.7, 1.4),
            "diag": trial.suggest_categorical("diag", [False, True]),
            "reg": trial.suggest_float("reg", 1e-6, 1.0, log=True),
            "iters": trial.suggest_int("iters", 1, 8),
        }

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
    ) -> XRFMModel:
        """Fit xRFM; (X_val, y_val) tune the iterations and split temperature."""
        p = self.default_params(spec) | dict(params)
        seed_everything(seed)
        x, xv, yt, yv = _train_val(X, y, X_val, y_val, seed)
        cls = spec.is_classification
        y_mean = 0.0 if cls else float(np.mean(yt))
        y_std = 1.0 if cls else float(np.std(yt)) or 1.0
        est = _estimator(p, device, seed, self.options.threads)
        dev = torch_device(device)
        x_t = torch.as_tensor(x, dtype=torch.float32, device=dev)
        est.fit(x_t, _target(yt, cls, y_mean, y_std), xv, _target(yv, cls, y_mean, y_std))
        _make_contiguous(est)
        config = {"params": p, "y_mean": y_mean, "y_std": y_std} | spec_meta(spec)
        return XRFMModel(est, x_t, config, spec)

    def portfolio(self, spec: ProblemSpec) -> list[dict[str, Any]]:
        """None beyond the defaults."""
        return []

    def full_data_params(
        self, params: Mapping[str, Any], fold_models: Sequence[FittedModel]
    ) -> dict[str, Any] | None:
        """None: a refit on all rows keeps an internal holdout for early stopping."""
        return None

    def load(self, files: Mapping[str, bytes], spec: ProblemSpec) -> XRFMModel:
        """Rebuild the estimator from the stored tree, leaf tensors and centres."""
        config = load_json(files[CONFIG_FILE])
        check_spec(config, spec)
        tensors = st_load(files[TENSORS_FILE])
        meta = config.pop("state")
        est = _estimator(config["params"], "cpu", None, self.options.threads)
        state = {k: v for k, v in meta.items() if k not in ("trees", "split_temperature")}
        state["param_trees"] = [_unflatten(t, tensors, est.device) for t in meta["trees"]]
        if spec.is_classification:
            state["class_converter"] = {k: tensors.get(f"conv{k}") for k in CONVERTER_KEYS}
            state["class_converter"]["_numerical_type"] = meta["numerical_type"]
        est.load_state_dict(state, tensors["x_train"])
        est.split_temperature = meta["split_temperature"]
        return XRFMModel(est, tensors["x_train"], config, spec)


def _make_contiguous(est: xRFM) -> None:
    """Give leaf tensors the memory layout a reload has, so predictions match bit for bit."""
    for tree in est.trees:
        for leaf in est._collect_leaf_nodes(tree):
            model = leaf["model"]
            for attr in ("weights", "M", "sqrtM", "centers"):
                val = getattr(model, attr, None)
                if torch.is_tensor(val):
                    setattr(model, attr, val.contiguous())


def _train_val(
    X: FeatureMatrix,
    y: np.ndarray,
    X_val: FeatureMatrix | None,
    y_val: np.ndarray | None,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if X_val is not None and y_val is not None:
        return X.values, X_val.values, y, y_val
    tr, ho = split_holdout(X.n_rows, 0.2, seed)
    return X.values[tr], X.values[ho], y[tr], y[ho]


def _target(y: np.ndarray, cls: bool, mean: float, std: float) -> torch.Tensor:
    if cls:
        return torch.as_tensor(y, dtype=torch.long)
    return torch.as_tensor((y - mean) / std, dtype=torch.float32)
