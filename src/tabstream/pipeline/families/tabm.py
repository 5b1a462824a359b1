"""TabM family: an efficient ensemble of k MLPs (package ``tabm``), trained by our own loop.

Inputs are the "nn" preprocessing (dense float32, standardised / one-hot). Constant columns are
dropped; optional piecewise-linear embeddings (``rtdl_num_embeddings``) use quantile bins.
Saved as safetensors weights plus a JSON config (architecture, bins, kept columns, y stats).
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import torch
from rtdl_num_embeddings import PiecewiseLinearEmbeddings, compute_bins
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from tabm import TabM
from torch import nn

from tabstream.pipeline.families._common import (
    check_spec,
    dump_json,
    load_json,
    n_threads,
    seed_everything,
    spec_meta,
    torch_device,
)
from tabstream.pipeline.options import FamilyOptions
from tabstream.pipeline.search.budget import check_time
from tabstream.pipeline.types import (
    Device,
    FeatureMatrix,
    FittedModel,
    PreprocessingKind,
    ProblemSpec,
)

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
PREDICT_BATCH = 4096


def _build(arch: Mapping[str, Any]) -> TabM:
    """Build the TabM module from a JSON-able architecture description."""
    embeddings = None
    if arch["bins"] is not None:
        bins = [torch.tensor(b, dtype=torch.float32) for b in arch["bins"]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            embeddings = PiecewiseLinearEmbeddings(
                bins, arch["d_embedding"], activation=False, version="B"
            )
    return TabM.make(
        n_num_features=arch["d_in"],
        d_out=arch["d_out"],
        num_embeddings=embeddings,
        n_blocks=arch["n_blocks"],
        d_block=arch["d_block"],
        dropout=arch["dropout"],
        k=arch["k"],
    )


def _bins(x: torch.Tensor, n_bins: int) -> list[list[float]]:
    n_bins = max(2, min(n_bins, x.shape[0] - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [b.tolist() for b in compute_bins(x, n_bins=n_bins)]


def _loss(out: torch.Tensor, y: torch.Tensor, classification: bool) -> torch.Tensor:
    """Mean over the k heads of the per-head loss; out is (batch, k, d_out)."""
    k = out.shape[1]
    if classification:
        return nn.functional.cross_entropy(out.flatten(0, 1), y.repeat_interleave(k))
    return nn.functional.mse_loss(out[..., 0], y[:, None].expand(-1, k))


@torch.no_grad()
def _predict(model: TabM, x: torch.Tensor, classification: bool) -> torch.Tensor:
    """Ensemble prediction: mean of per-head probabilities (or values)."""
    model.eval()
    parts = []
    for chunk in torch.split(x, PREDICT_BATCH):
        out = model(chunk).float()
        parts.append(out.softmax(-1).mean(1) if classification else out[..., 0].mean(1))
    return torch.cat(parts)


def _val_loss(pred: torch.Tensor, y: torch.Tensor, classification: bool) -> float:
    if classification:
        return float(nn.functional.nll_loss(pred.clamp_min(1e-12).log(), y))
    return float(nn.functional.mse_loss(pred, y))


@dataclass
class TabMModel:
    """A trained TabM module plus what it needs to map features in and predictions out."""

    model: TabM
    config: dict[str, Any]
    spec: ProblemSpec
    family: str = "tabm"

    def predict_raw(self, X: FeatureMatrix) -> np.ndarray:
        """Class probabilities (n, K) or regression values (n,)."""
        dev = next(self.model.parameters()).device
        x = torch.as_tensor(X.values[:, self.config["keep"]], dtype=torch.float32, device=dev)
        pred = _predict(self.model, x, self.spec.is_classification).cpu().double().numpy()
        out: np.ndarray = (
            pred / pred.sum(axis=1, keepdims=True)
            if self.spec.is_classification
            else pred * self.config["y_std"] + self.config["y_mean"]
        )
        return out

    def to_files(self) -> dict[str, bytes]:
        """safetensors weights and a JSON config (no pickle)."""
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        return {WEIGHTS_FILE: st_save(state), CONFIG_FILE: dump_json(self.config)}


class _Trainer:
    """One training run: mini-batch AdamW, early stopping on validation loss."""

    def __init__(self, model: TabM, params: Mapping[str, Any], cls: bool, seed: int) -> None:
        self.model, self.params, self.cls = model, params, cls
        self.opt = torch.optim.AdamW(
            model.parameters(), lr=params["lr"], weight_decay=params["weight_decay"]
        )
        self.gen = torch.Generator().manual_seed(seed)

    def epoch(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.model.train()
        bs = int(self.params["batch_size"])
        order = torch.randperm(len(x), generator=self.gen).to(x.device)
        for idx in torch.split(order, bs):
            self.opt.zero_grad(set_to_none=True)
            torch.autograd.backward(_loss(self.model(x[idx]), y[idx], self.cls))
            self.opt.step()

    def run(self, data: tuple[torch.Tensor, ...]) -> int:
        """Train; returns the number of epochs of the kept weights."""
        x, y, xv, yv = data
        best, best_state, best_epoch, waited = float("inf"), None, 0, 0
        deadline = time.monotonic() + float(self.params.get("time_limit_s") or 1e12)
        for epoch in range(1, int(self.params["max_epochs"]) + 1):
            check_time()
            self.epoch(x, y)
            if len(xv):
                loss = _val_loss(_predict(self.model, xv, self.cls), yv, self.cls)
                if loss < best:
                    best, best_epoch, waited = loss, epoch, 0
                    best_state = copy.deepcopy(self.model.state_dict())
                else:
                    waited += 1
            if waited > int(self.params["patience"]) or time.monotonic() > deadline:
                break
        if best_state is None:
            return epoch
        self.model.load_state_dict(best_state)
        return best_epoch


class TabMFamily:
    """TabM (Gorishniy et al.): parameter-efficient ensemble of MLPs."""

    name = "tabm"
    preprocessing: PreprocessingKind = "nn"

    def __init__(self, options: FamilyOptions | None = None) -> None:
        self.options = options or FamilyOptions()

    def available(self) -> str | None:
        """Always usable: tabm and torch are hard dependencies."""
        return None

    def supports(self, spec: ProblemSpec, device: Device) -> bool:
        """All task kinds, on CPU and CUDA."""
        return True

    def default_params(self, spec: ProblemSpec) -> dict[str, Any]:
        """TabM paper defaults (k=32, 3 blocks of 512, dropout 0.1, lr 2e-3)."""
        return {
            "lr": 2e-3,
            "weight_decay": 3e-4,
            "n_blocks": 3,
            "d_block": 512,
            "dropout": 0.1,
            "k": 32,
            "use_embeddings": False,
            "n_bins": 16,
            "d_embedding": 16,
            "batch_size": 256,
            "max_epochs": 200,
            "patience": 16,
            "time_limit_s": None,
        }

    def suggest(self, trial: optuna.Trial, spec: ProblemSpec) -> dict[str, Any]:
        """Sample the search space; k, batch size and epochs stay at their defaults."""
        params = self.default_params(spec)
        use_wd = trial.suggest_categorical("use_weight_decay", [True, False])
        params |= {
            "lr": trial.suggest_float("lr", 1e-4, 3e-3, log=True),
            "weight_decay": (
                trial.suggest_float("weight_decay", 1e-5, 1e-2, log=True) if use_wd else 0.0
            ),
            "n_blocks": trial.suggest_int("n_blocks", 1, 4),
            "d_block": trial.suggest_int("d_block", 128, 512, step=64),
            "dropout": trial.suggest_float("dropout", 0.0, 0.3),
            "use_embeddings": trial.suggest_categorical("use_embeddings", [True, False]),
        }
        if params["use_embeddings"]:
            params["n_bins"] = trial.suggest_int("n_bins", 8, 48)
        return params

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
    ) -> TabMModel:
        """Train with AdamW on mini-batches; early stopping on (X_val, y_val) when given."""
        torch.set_num_threads(n_threads(params, self.options.threads))
        seed_everything(seed)
        p = self.default_params(spec) | dict(params)
        cls, dev = spec.is_classification, torch_device(device)
        keep = np.flatnonzero(np.ptp(X.values, axis=0) > 0).tolist() or [0]
        x = torch.as_tensor(X.values[:, keep], dtype=torch.float32)
        y_mean = 0.0 if cls else float(np.mean(y))
        y_std = 1.0 if cls else float(np.std(y)) or 1.0
        config: dict[str, Any] = {
            "keep": keep,
            "y_mean": y_mean,
            "y_std": y_std,
            "arch": {
                "d_in": len(keep),
                "d_out": spec.n_classes if cls else 1,
                "bins": _bins(x, int(p["n_bins"])) if p["use_embeddings"] else None,
                **{k: p[k] for k in ("d_embedding", "n_blocks", "d_block", "dropout", "k")},
            },
        } | spec_meta(spec)
        model = _build(config["arch"]).to(dev)
        data = _tensors(X, y, X_val, y_val, keep, (y_mean, y_std), cls, dev)
        config["epochs"] = _Trainer(model, p, cls, seed).run(data)
        return TabMModel(model, config, spec)

    def portfolio(self, spec: ProblemSpec) -> list[dict[str, Any]]:
        """None beyond the defaults."""
        return []

    def full_data_params(
        self, params: Mapping[str, Any], fold_models: Sequence[FittedModel]
    ) -> dict[str, Any] | None:
        """None: a refit on all rows keeps an internal holdout for early stopping."""
        return None

    def load(self, files: Mapping[str, bytes], spec: ProblemSpec) -> TabMModel:
        """Rebuild the module from the JSON config and load the safetensors weights."""
        config = load_json(files[CONFIG_FILE])
        check_spec(config, spec)
        model = _build(config["arch"])
        model.load_state_dict(st_load(files[WEIGHTS_FILE]))
        return TabMModel(model, config, spec)


def _tensors(
    X: FeatureMatrix,
    y: np.ndarray,
    X_val: FeatureMatrix | None,
    y_val: np.ndarray | None,
    keep: list[int],
    y_stats: tuple[float, float],
    cls: bool,
    dev: torch.device,
) -> tuple[torch.Tensor, ...]:
    """(x, y, x_val, y_val) on ``dev``; the validation pair is empty when not given."""

    def feats(m: FeatureMatrix | None) -> torch.Tensor:
        vals = m.values[:, keep] if m is not None else np.zeros((0, len(keep)))
        return torch.as_tensor(vals, dtype=torch.float32, device=dev)

    def target(t: np.ndarray | None) -> torch.Tensor:
        t = np.zeros(0) if t is None else t
        if cls:
            return torch.as_tensor(t, dtype=torch.long, device=dev)
        return torch.as_tensor((t - y_stats[0]) / y_stats[1], dtype=torch.float32, device=dev)

    has_val = X_val is not None and y_val is not None
    return (
        feats(X),
        target(y),
        feats(X_val if has_val else None),
        target(y_val if has_val else None),
    )
