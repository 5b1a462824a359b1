"""TabM family: an efficient ensemble of k MLPs (package ``tabm``), trained by our own loop.

Inputs are the "nn" preprocessing (dense float32, standardised / one-hot). Constant columns are
dropped; optional piecewise-linear embeddings (``rtdl_num_embeddings``) use quantile bins.
Saved as safetensors weights plus a JSON config (architecture, bins, kept columns, y stats).

Sizes per device: the defaults and the search space give CUDA sizes (the paper's k=32 heads of 3
blocks of 512) with ``"size": "auto"``, which ``fit`` resolves for its device (``resolve_sizes``):
unchanged on CUDA; on a CPU blocks a quarter as wide, a quarter of the heads, half the
early-stopping patience, and a wall-clock limit per fit (``CPU_SCALE``). Params without
``size`` (or with ``"exact"``) are trained as given. A saved model records its resolved
architecture.
"""

from __future__ import annotations

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

from tabstream.pipeline.families._common import (
    check_spec,
    dump_json,
    load_json,
    n_threads,
    seed_everything,
    spec_meta,
    torch_device,
)
from tabstream.pipeline.families._tabm_train import Trainer, predict_mean, tensors
from tabstream.pipeline.options import FamilyOptions
from tabstream.pipeline.types import (
    Device,
    FeatureMatrix,
    FittedModel,
    PreprocessingKind,
    ProblemSpec,
)

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
AUTO = "auto"


@dataclass(frozen=True)
class DeviceScale:
    """How ``"size": "auto"`` params map to one kind of device: block width, heads (k) and
    early-stopping patience are multiplied by ``width``, ``heads`` and ``patience``; a fit whose
    ``time_limit_s`` is None stops after ``fit_s = (floor, per training row)`` seconds
    (``max(floor, per_row * rows)``), or runs unbounded when ``fit_s`` is None."""

    width: float = 1.0
    heads: float = 1.0
    patience: float = 1.0
    fit_s: tuple[float, float] | None = None


CUDA_SCALE = DeviceScale()
CPU_SCALE = DeviceScale(width=0.25, heads=0.25, patience=0.5, fit_s=(5.0, 0.01))
"""On 2 CPU cores: default 8 heads of 3 blocks of 128. A fit's cost grows with the heads: at a
per-fit limit of 3 s, 16 heads (half the paper's) scored worse than 8 on all 6 fits tried, and
at 15 s about as well in twice the time (``docs/engine.md``). The cap lets a default fit on
1,500-5,500 rows converge (11 s on segment, ~45 s on bikeshare)."""


def resolve_sizes(params: Mapping[str, Any], device: Device, n_rows: int) -> dict[str, Any]:
    """``params`` with their sizes for ``device`` when ``size`` is "auto" (see
    ``DeviceScale``), else as given; ``size`` becomes "exact"."""
    p = dict(params)
    if p.get("size") != AUTO:
        return p | {"size": "exact"}
    scale = CUDA_SCALE if device.startswith("cuda") else CPU_SCALE
    p["d_block"] = max(8, round(int(p["d_block"]) * scale.width))
    p["k"] = max(1, round(int(p["k"]) * scale.heads))
    p["patience"] = max(1, round(int(p["patience"]) * scale.patience))
    if p.get("time_limit_s") is None and scale.fit_s is not None:
        p["time_limit_s"] = max(scale.fit_s[0], scale.fit_s[1] * n_rows)
    return p | {"size": "exact"}


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
        pred = predict_mean(self.model, x, self.spec.is_classification).cpu().double().numpy()
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
        """TabM paper defaults (k=32, 3 blocks of 512, dropout 0.1, lr 2e-3) as CUDA sizes, with
        ``"size": "auto"``: on a CPU, 8 heads of 3 blocks of 128 (``resolve_sizes``)."""
        return {
            "size": AUTO,
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
        """Sample the search space (CUDA sizes, resolved per device in ``fit``); k, batch size
        and epochs stay at their defaults."""
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
        """Train with AdamW on mini-batches; early stopping on (X_val, y_val) when given.
        Missing params take the defaults; without a ``size`` the sizes are trained as given."""
        torch.set_num_threads(n_threads(params, self.options.threads))
        seed_everything(seed)
        p = self.default_params(spec) | {"size": "exact"} | dict(params)
        p = resolve_sizes(p, device, X.n_rows)
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
        val = (X_val, y_val) if X_val is not None and y_val is not None else None
        data = tensors(X, y, val, keep, (y_mean, y_std), cls, dev)
        config["epochs"] = Trainer(model, p, cls, seed).run(data)
        return TabMModel(model, config, spec)

    def portfolio(self, spec: ProblemSpec) -> list[dict[str, Any]]:
        """The defaults with piecewise-linear embeddings of the numeric features (the paper's
        strongest variant). Neither variant wins everywhere: one 80/20 fit of each on CPU (15 s
        limit) scored better with embeddings on segment's three splits (logloss 0.055 vs 0.086
        on split 0), bikeshare and california, and worse on abalone and credit_g."""
        defaults = self.default_params(spec)
        shared = ("lr", "weight_decay", "n_blocks", "d_block", "dropout", "n_bins")
        embedded = {k: defaults[k] for k in shared} | {"use_embeddings": True}
        return [embedded | {"use_weight_decay": defaults["weight_decay"] > 0}]

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
