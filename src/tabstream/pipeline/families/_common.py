"""Helpers shared by the families: threads, seeding, JSON files, class padding, holdouts and
the boosting families' early-stopping and refit rounds."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tabstream.pipeline.types import ProblemSpec

if TYPE_CHECKING:
    import torch

FULL_DATA_ROUNDS = 1.1
"""Rounds of a boosted model's refit on all rows, relative to its fold models' mean
early-stopped rounds (the refit sees more rows)."""


def n_threads(params: Mapping[str, Any] | None, configured: int | None) -> int:
    """CPU threads for a family: ``params["n_threads"]``, else the operator's
    (``FamilyOptions.threads``), else all cores."""
    if params and params.get("n_threads"):
        return int(params["n_threads"])
    return configured if configured is not None else max(1, os.cpu_count() or 1)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) generators."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def torch_device(device: str) -> torch.device:
    """The torch device for our device string ("cpu" or "cuda")."""
    import torch

    return torch.device("cuda" if device.startswith("cuda") else "cpu")


def dump_json(obj: Any) -> bytes:
    """Deterministic UTF-8 JSON bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def load_json(data: bytes) -> Any:
    """Parse JSON bytes."""
    return json.loads(data.decode())


def spec_meta(spec: ProblemSpec) -> dict[str, Any]:
    """The part of a problem spec a saved model records to check it on load."""
    return {"kind": spec.kind, "n_classes": spec.n_classes}


def check_spec(meta: Mapping[str, Any], spec: ProblemSpec) -> None:
    """Refuse to load a model saved for a different kind of problem."""
    if meta.get("kind") != spec.kind or meta.get("n_classes") != spec.n_classes:
        raise ValueError(
            f"saved model is for {meta.get('kind')} with {meta.get('n_classes')} classes, "
            f"not {spec.kind} with {spec.n_classes}"
        )


def pad_proba(proba: np.ndarray, present: np.ndarray, n_classes: int) -> np.ndarray:
    """Place columns for the ``present`` class codes into an (n, n_classes) matrix."""
    out = np.zeros((proba.shape[0], n_classes), dtype=np.float64)
    out[:, present.astype(np.int64)] = proba
    result: np.ndarray = out / out.sum(axis=1, keepdims=True)
    return result


def split_holdout(n: int, frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, holdout) index split for families that need a validation set."""
    perm = np.random.default_rng(seed).permutation(n)
    n_hold = max(1, round(n * frac))
    return np.sort(perm[n_hold:]), np.sort(perm[:n_hold])


def patience(learning_rate: float, per_rate: float = 2.0, low: int = 10, high: int = 50) -> int:
    """Early-stopping rounds for a learning rate: about ``per_rate`` / lr rounds (a fixed
    distance in "learning" rather than in trees), within [``low``, ``high``]."""
    return int(np.clip(round(per_rate / learning_rate), low, high))


def full_data_rounds(rounds: Sequence[int]) -> int:
    """Rounds for a refit on all rows without early stopping: the fold models' mean
    early-stopped rounds x ``FULL_DATA_ROUNDS``."""
    return max(1, round(float(np.mean(rounds)) * FULL_DATA_ROUNDS))
