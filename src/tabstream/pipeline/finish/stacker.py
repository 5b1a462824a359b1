"""Stacking: a second layer trained on the OOF predictions of the Caruana ensemble's members.

Features are the members' raw predictions in pooling space (``ensemble.to_pool_space``),
concatenated: each member's K log-probabilities (classification) or its value (regression).
The layer is an L2-regularised logistic regression (softmax; binary for two classes) or a ridge
regression. It is cross-fitted on the search's folds: fold f's layer is fitted on the covered
rows outside fold f and predicts fold f, which gives the stacker's OOF predictions (no row is
predicted by a layer that saw its label). The fold layers are the bag: new rows get their mean,
in pooling space (log-probabilities averaged and renormalised, values averaged). The
regularisation strength is the one of ``STRENGTHS`` with the lowest OOF loss. A single holdout
fold has nothing to cross-fit on: no stacker. Saved as safetensors, never pickled.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from threadpoolctl import threadpool_limits

from tabstream.pipeline.finish.ensemble import LossFn, Pooling, from_pool_space, pool, to_pool_space

STRENGTHS = (1e-2, 1e-3, 1e-4)
"""L2 strengths tried, strongest first (ties go to it): per row for the logistic layer, relative
to the features' mean centred sum of squares for ridge."""
MAX_ITER = 300
ABSENT_CLASS_MARGIN = 30.0
"""A class missing from a fold's training rows gets the mean logit of the others minus this."""


@dataclass(frozen=True)
class Stacker:
    """The bag of linear layers: ``coefs[i]`` is (F, K) for classification, (F,) for
    regression; ``intercepts[i]`` is (K,) or (1,)."""

    pooling: Pooling
    coefs: tuple[np.ndarray, ...]
    intercepts: tuple[np.ndarray, ...]

    def predict(self, member_raws: Sequence[np.ndarray]) -> np.ndarray:
        """Raw predictions from the members' raw predictions (in the order it was fitted on)."""
        X = stack_features(member_raws, self.pooling)
        if X.shape[1] != self.coefs[0].shape[0]:
            raise ValueError(f"stacker expects {self.coefs[0].shape[0]} features, got {X.shape[1]}")
        outs = [
            _apply(X, c, b, self.pooling) for c, b in zip(self.coefs, self.intercepts, strict=True)
        ]
        return pool(outs, [1.0 / len(outs)] * len(outs), self.pooling)

    def to_bytes(self) -> bytes:
        """The layers as safetensors (``coef.<i>``, ``intercept.<i>``, float64)."""
        tensors = {f"coef.{i}": np.ascontiguousarray(c) for i, c in enumerate(self.coefs)}
        tensors |= {
            f"intercept.{i}": np.ascontiguousarray(b) for i, b in enumerate(self.intercepts)
        }
        return bytes(st_save(tensors))

    @classmethod
    def from_bytes(cls, data: bytes, pooling: Pooling, n_members: int, n_classes: int) -> Stacker:
        """Rebuild from ``to_bytes`` output (``ValueError`` unless the layers fit ``n_members``
        members' predictions of ``n_classes`` classes, 0 for regression)."""
        tensors = st_load(data)
        n = len(tensors) // 2
        if n == 0 or set(tensors) != {f"{k}.{i}" for k in ("coef", "intercept") for i in range(n)}:
            raise ValueError(f"stacker tensors {sorted(tensors)} are not a bag of layers")
        coefs = tuple(np.asarray(tensors[f"coef.{i}"], np.float64) for i in range(n))
        intercepts = tuple(np.asarray(tensors[f"intercept.{i}"], np.float64) for i in range(n))
        shape: tuple[int, ...] = (n_members,)
        width: tuple[int, ...] = (1,)
        if pooling == "log":
            shape, width = (n_members * n_classes, n_classes), (n_classes,)
        if any(c.shape != shape for c in coefs) or any(b.shape != width for b in intercepts):
            raise ValueError(f"stacker layers are not all {shape} with their intercepts")
        return cls(pooling, coefs, intercepts)


@dataclass(frozen=True)
class StackerFit:
    """A fitted stacker, its cross-fitted OOF predictions, their loss and the L2 strength."""

    stacker: Stacker
    oof: np.ndarray
    loss: float
    strength: float


def stack_features(member_raws: Sequence[np.ndarray], pooling: Pooling) -> np.ndarray:
    """(n, F): the members' raw predictions in pooling space, side by side."""
    parts = [to_pool_space(np.asarray(r, dtype=np.float64), pooling) for r in member_raws]
    return np.concatenate([p[:, None] if p.ndim == 1 else p for p in parts], axis=1)


def fit_stacker(
    member_oofs: Sequence[np.ndarray],
    y: np.ndarray,
    folds: Sequence[np.ndarray],
    pooling: Pooling,
    loss: LossFn,
) -> StackerFit | None:
    """Cross-fit the stacker on the members' OOF predictions (rows aligned with ``y``) over
    ``folds`` (positions of each fold's validation rows in ``y``); None with fewer than two
    folds, or when a fold's training rows hold a single class."""
    if len(folds) < 2 or not member_oofs:
        return None
    X = stack_features(member_oofs, pooling)
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        return None
    n_classes = np.shape(member_oofs[0])[1] if pooling == "log" else 0
    with threadpool_limits(1):  # threaded BLAS slows these small solves several-fold
        fits = [_cross_fit(X, y, folds, n_classes, strength) for strength in STRENGTHS]
    best: StackerFit | None = None
    for strength, fitted in zip(STRENGTHS, fits, strict=True):
        if fitted is None:
            return None
        layers, oof = fitted
        value = float(loss(y, oof))
        if best is None or value < best.loss:
            coefs, intercepts = zip(*layers, strict=True)
            best = StackerFit(Stacker(pooling, coefs, intercepts), oof, value, strength)
    return best


Layer = tuple[np.ndarray, np.ndarray]


def _cross_fit(
    X: np.ndarray, y: np.ndarray, folds: Sequence[np.ndarray], n_classes: int, strength: float
) -> tuple[list[Layer], np.ndarray] | None:
    """Fold layers and OOF predictions (``n_classes`` 0: regression)."""
    pooling: Pooling = "log" if n_classes else "linear"
    oof = np.zeros((len(y), n_classes) if n_classes else len(y), dtype=np.float64)
    layers = []
    for positions in folds:
        train = np.ones(len(y), dtype=bool)
        train[positions] = False
        if not train.any():
            return None
        if n_classes:
            layer = _fit_logistic(X[train], y[train], strength, n_classes)
        else:
            layer = _fit_ridge(X[train], y[train], strength)
        if layer is None:
            return None
        oof[positions] = _apply(X[positions], *layer, pooling)
        layers.append(layer)
    return layers, oof


def _fit_ridge(X: np.ndarray, y: np.ndarray, strength: float) -> Layer:
    spread = float(np.mean(np.sum((X - X.mean(axis=0)) ** 2, axis=0)))
    model = Ridge(alpha=strength * spread if spread > 0 else strength, solver="cholesky")
    model.fit(X, np.asarray(y, dtype=np.float64))
    return np.asarray(model.coef_, np.float64), np.array([float(model.intercept_)])


def _fit_logistic(X: np.ndarray, y: np.ndarray, strength: float, n_classes: int) -> Layer | None:
    classes = np.unique(y)
    if len(classes) < 2:
        return None
    centre = X.mean(axis=0)  # the same model (the intercept is not penalised), better solved
    model = LogisticRegression(C=1.0 / (strength * len(y)), max_iter=MAX_ITER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X - centre, y)
    coef, intercept = model.coef_.T, model.intercept_ - centre @ model.coef_.T
    if len(classes) == 2:
        coef = np.concatenate([np.zeros_like(coef), coef], axis=1)
        intercept = np.array([0.0, intercept[0]])
    if len(classes) == n_classes:
        return np.asarray(coef, np.float64), np.asarray(intercept, np.float64)
    return _padded(coef, intercept, classes, n_classes)


def _padded(coef: np.ndarray, intercept: np.ndarray, classes: np.ndarray, n_classes: int) -> Layer:
    """The layer over all ``n_classes``: an absent class gets the mean logit of the present
    ones minus ``ABSENT_CLASS_MARGIN``, so it is never more likely than e^-margin."""
    full_coef = np.repeat(coef.mean(axis=1, keepdims=True), n_classes, axis=1)
    full_intercept = np.full(n_classes, intercept.mean() - ABSENT_CLASS_MARGIN)
    full_coef[:, classes], full_intercept[classes] = coef, intercept
    return full_coef, full_intercept


def _apply(X: np.ndarray, coef: np.ndarray, intercept: np.ndarray, pooling: Pooling) -> np.ndarray:
    z = X @ coef + intercept
    return from_pool_space(z, pooling) if pooling == "log" else np.asarray(z)
