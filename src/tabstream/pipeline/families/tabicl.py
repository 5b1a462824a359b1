"""TabICL family: a pretrained in-context-learning transformer (package ``tabicl``).

Weights come only from the operator's configuration (``FamilyOptions``: the settings
``TABSTREAM_TABICL_CHECKPOINT`` for the classifier and, optionally,
``TABSTREAM_TABICL_REGRESSOR_CHECKPOINT`` for the regressor); nothing is ever downloaded
(``allow_auto_download=False``). tabicl reads the checkpoint with
``torch.load(..., weights_only=True)``, so no arbitrary unpickling happens, and the file comes
from the operator's configured path, never from a user.

"Fitting" stores the (subsampled) context set; saving writes it as safetensors plus a JSON
with the estimator params and the checkpoint's sha256, which ``load`` checks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save
from tabicl import TabICLClassifier, TabICLRegressor

from tabstream.pipeline.families._common import (
    check_spec,
    dump_json,
    load_json,
    n_threads,
    pad_proba,
    spec_meta,
)
from tabstream.pipeline.options import FamilyOptions
from tabstream.pipeline.types import (
    Device,
    FeatureMatrix,
    FittedModel,
    PreprocessingKind,
    ProblemSpec,
)

CLASSIFIER_SETTING = "TABSTREAM_TABICL_CHECKPOINT"
REGRESSOR_SETTING = "TABSTREAM_TABICL_REGRESSOR_CHECKPOINT"
CONTEXT_FILE = "context.safetensors"
CONFIG_FILE = "config.json"
MAX_CONTEXT_ROWS = 10_000
_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def checkpoint_path(options: FamilyOptions, regression: bool) -> Path | None:
    """The configured checkpoint file for the task, or None when unset."""
    return options.tabicl_regressor_checkpoint if regression else options.tabicl_checkpoint


def missing_reason(options: FamilyOptions, regression: bool) -> str | None:
    """None when the checkpoint for the task is configured and present, else why not (naming
    the setting to change)."""
    setting = REGRESSOR_SETTING if regression else CLASSIFIER_SETTING
    path = checkpoint_path(options, regression)
    what = "tabicl regression" if regression else "tabicl"
    if path is None:
        return (
            f"{what} needs pretrained weights: set {setting} to a local checkpoint file; "
            "none is downloaded"
        )
    if not path.is_file():
        return f"{what} checkpoint not found at {setting}={path}; none is downloaded"
    return None


def sha256_file(path: Path) -> str:
    """sha256 of a file, cached by (path, size, mtime)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _SHA_CACHE[key] = digest.hexdigest()
    return _SHA_CACHE[key]


def _estimator(
    p: Mapping[str, Any],
    regression: bool,
    path: Path,
    device: Device,
    seed: int,
    threads: int | None,
) -> TabICLClassifier | TabICLRegressor:
    common = {
        "n_estimators": int(p["n_estimators"]),
        "outlier_threshold": float(p["outlier_threshold"]),
        "model_path": path,
        "allow_auto_download": False,
        "device": "cuda" if device.startswith("cuda") else "cpu",
        "random_state": seed,
        "n_jobs": n_threads(p, threads),
        "verbose": False,
    }
    if regression:
        return TabICLRegressor(**common)
    return TabICLClassifier(
        softmax_temperature=float(p["softmax_temperature"]),
        average_logits=bool(p["average_logits"]),
        **common,
    )


@dataclass
class TabICLModel:
    """A TabICL estimator holding its context set (the training rows it conditions on)."""

    est: TabICLClassifier | TabICLRegressor
    x: np.ndarray
    y: np.ndarray
    config: dict[str, Any]
    spec: ProblemSpec
    family: str = "tabicl"

    def predict_raw(self, X: FeatureMatrix) -> np.ndarray:
        """Class probabilities (n, K) or regression values (n,)."""
        if self.spec.is_classification:
            proba = np.asarray(self.est.predict_proba(X.values), dtype=np.float64)
            return pad_proba(proba, np.asarray(self.est.classes_), self.spec.n_classes)
        return np.asarray(self.est.predict(X.values), dtype=np.float64)

    def to_files(self) -> dict[str, bytes]:
        """The context set as safetensors and a JSON config (params, checkpoint sha256)."""
        context = st_save({"x": np.ascontiguousarray(self.x), "y": np.ascontiguousarray(self.y)})
        return {CONTEXT_FILE: context, CONFIG_FILE: dump_json(self.config)}


class TabICLFamily:
    """TabICL: no training, in-context prediction from a pretrained checkpoint."""

    name = "tabicl"
    preprocessing: PreprocessingKind = "nn"

    def __init__(self, options: FamilyOptions | None = None) -> None:
        self.options = options or FamilyOptions()

    def available(self) -> str | None:
        """None when the (classifier) checkpoint is configured and present, else the reason."""
        return missing_reason(self.options, regression=False)

    def unsupported_reason(self, spec: ProblemSpec, device: Device) -> str | None:
        """Why ``spec`` cannot run here (missing checkpoint for its task), or None."""
        return missing_reason(self.options, regression=not spec.is_classification)

    def supports(self, spec: ProblemSpec, device: Device) -> bool:
        """Classification with the classifier checkpoint; regression needs the regressor one."""
        return self.unsupported_reason(spec, device) is None

    def default_params(self, spec: ProblemSpec) -> dict[str, Any]:
        """tabicl's defaults (8 ensemble members, temperature 0.9, logit averaging)."""
        return {
            "n_estimators": 8,
            "softmax_temperature": 0.9,
            "average_logits": True,
            "outlier_threshold": 4.0,
            "max_context_rows": MAX_CONTEXT_ROWS,
        }

    def suggest(self, trial: optuna.Trial, spec: ProblemSpec) -> dict[str, Any]:
        """A small space: ensemble size, outlier clipping, and (classification) softmax."""
        params = self.default_params(spec) | {
            "n_estimators": trial.suggest_categorical("n_estimators", [4, 8, 16]),
            "outlier_threshold": trial.suggest_float("outlier_threshold", 3.0, 6.0),
        }
        if spec.is_classification:
            params["softmax_temperature"] = trial.suggest_float("softmax_temperature", 0.5, 1.2)
            params["average_logits"] = trial.suggest_categorical("average_logits", [True, False])
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
    ) -> TabICLModel:
        """Store a seeded subsample (≤ max_context_rows) as the context; validation unused."""
        regression = not spec.is_classification
        reason = missing_reason(self.options, regression)
        if reason:
            raise RuntimeError(reason)
        path = checkpoint_path(self.options, regression)
        assert path is not None
        p = self.default_params(spec) | dict(params)
        x, yc = _subsample(X.values, y, int(p["max_context_rows"]), seed)
        config = {
            "params": p,
            "seed": seed,
            "checkpoint": {"path": str(path), "sha256": sha256_file(path)},
        } | spec_meta(spec)
        est = _estimator(p, regression, path, device, seed, self.options.threads).fit(x, yc)
        return TabICLModel(est, x, yc, config, spec)

    def portfolio(self, spec: ProblemSpec) -> list[dict[str, Any]]:
        """None beyond the defaults."""
        return []

    def full_data_params(
        self, params: Mapping[str, Any], fold_models: Sequence[FittedModel]
    ) -> dict[str, Any] | None:
        """The same params: in-context learning uses no validation set, so all rows serve."""
        return dict(params)

    def load(self, files: Mapping[str, bytes], spec: ProblemSpec) -> TabICLModel:
        """Rebuild from the configured checkpoint (sha256 must match) and the stored context."""
        config = load_json(files[CONFIG_FILE])
        check_spec(config, spec)
        regression = not spec.is_classification
        path = checkpoint_path(self.options, regression) or Path(config["checkpoint"]["path"])
        if not path.is_file() or sha256_file(path) != config["checkpoint"]["sha256"]:
            raise ValueError(
                f"tabicl checkpoint {path} is missing or differs from the one the model used "
                f"(sha256 {config['checkpoint']['sha256']})"
            )
        ctx = st_load(files[CONTEXT_FILE])
        seed = int(config["seed"])
        est = _estimator(config["params"], regression, path, "cpu", seed, self.options.threads)
        est.fit(ctx["x"], ctx["y"])
        return TabICLModel(est, ctx["x"], ctx["y"], config, spec)


def _subsample(
    x: np.ndarray, y: np.ndarray, limit: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float32)
    if len(x) <= limit:
        return x, y
    idx = np.sort(np.random.default_rng(seed).choice(len(x), size=limit, replace=False))
    return x[idx], y[idx]
