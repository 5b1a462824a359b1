"""Metrics against sklearn, directions, defaults and robustness to missing classes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from tabstream.pipeline.search.scoring import (
    REGISTRY,
    binary_auc,
    default_metrics,
    get_metric,
    oriented,
    resolve_metrics,
    score,
    to_loss,
)

rng = np.random.default_rng(0)
Y_BIN = rng.integers(0, 2, 200)
P_BIN = np.clip(Y_BIN * 0.3 + rng.random(200) * 0.7, 0.01, 0.99)
RAW_BIN = np.column_stack([1 - P_BIN, P_BIN])
Y_MC = rng.integers(0, 4, 300)
RAW_MC = rng.dirichlet(np.ones(4), 300) + np.eye(4)[Y_MC] * 0.5
RAW_MC /= RAW_MC.sum(axis=1, keepdims=True)
Y_REG = rng.normal(size=100)
RAW_REG = Y_REG + rng.normal(scale=0.5, size=100)


@pytest.mark.parametrize(
    ("name", "y", "raw", "expected"),
    [
        ("auc", Y_BIN, RAW_BIN, skm.roc_auc_score(Y_BIN, P_BIN)),
        ("auc", Y_MC, RAW_MC, skm.roc_auc_score(Y_MC, RAW_MC, multi_class="ovr", average="macro")),
        ("accuracy", Y_MC, RAW_MC, skm.accuracy_score(Y_MC, RAW_MC.argmax(1))),
        ("neg_class_error", Y_BIN, RAW_BIN, skm.accuracy_score(Y_BIN, RAW_BIN.argmax(1)) - 1),
        ("logloss", Y_BIN, RAW_BIN, skm.log_loss(Y_BIN, RAW_BIN)),
        ("logloss", Y_MC, RAW_MC, skm.log_loss(Y_MC, RAW_MC)),
        ("f1", Y_BIN, RAW_BIN, skm.f1_score(Y_BIN, RAW_BIN.argmax(1))),
        ("f1", Y_MC, RAW_MC, skm.f1_score(Y_MC, RAW_MC.argmax(1), average="macro")),
        ("rmse", Y_REG, RAW_REG, skm.root_mean_squared_error(Y_REG, RAW_REG)),
        ("mae", Y_REG, RAW_REG, skm.mean_absolute_error(Y_REG, RAW_REG)),
        ("r2", Y_REG, RAW_REG, skm.r2_score(Y_REG, RAW_REG)),
    ],
)
def test_matches_sklearn(name: str, y: np.ndarray, raw: np.ndarray, expected: float) -> None:
    assert score(get_metric(name), y, raw) == pytest.approx(expected, rel=1e-9)


def test_directions_and_orientation() -> None:
    greater = {n for n, m in REGISTRY.items() if m.greater_is_better}
    assert greater == {"auc", "accuracy", "neg_class_error", "f1", "r2"}
    assert {n for n, m in REGISTRY.items() if m.needs_proba} == {"auc", "logloss"}
    auc, rmse = get_metric("auc"), get_metric("rmse")
    assert oriented(auc, 0.9) == 0.9 and to_loss(auc, 0.9) == -0.9
    assert oriented(rmse, 2.0) == -2.0 and to_loss(rmse, 2.0) == 2.0
    perfect = score(get_metric("neg_class_error"), Y_BIN, np.eye(2)[Y_BIN])
    assert perfect == 0.0


def test_defaults_and_resolution() -> None:
    assert [m.name for m in default_metrics("binclass")] == ["auc"]
    assert [m.name for m in default_metrics("multiclass")] == ["logloss"]
    assert [m.name for m in default_metrics("regression")] == ["rmse"]
    assert [m.name for m in resolve_metrics(["f1", "auc"], "multiclass")] == ["f1", "auc"]
    assert resolve_metrics(None, "regression") == default_metrics("regression")
    with pytest.raises(ValueError, match="'rmse'"):
        resolve_metrics(["rmse"], "binclass")
    with pytest.raises(ValueError, match="'mape'"):
        get_metric("mape")  # unknown (mase and smape exist for forecasting)


def test_fold_missing_a_class() -> None:
    y = np.array([0, 0, 0])
    raw = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4]])
    assert math.isnan(score(get_metric("auc"), y, raw))
    mc_y = np.array([0, 1, 1, 0])
    mc_raw = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.3, 0.6, 0.1], [0.5, 0.3, 0.2]])
    assert score(get_metric("auc"), mc_y, mc_raw) == pytest.approx(1.0)
    expected = skm.log_loss(mc_y, mc_raw, labels=[0, 1, 2])
    assert score(get_metric("logloss"), mc_y, mc_raw) == pytest.approx(expected)
    assert score(get_metric("f1"), mc_y, mc_raw) == pytest.approx(
        skm.f1_score(mc_y, mc_raw.argmax(1), labels=[0, 1, 2], average="macro", zero_division=0)
    )


def test_logloss_clips_zero_probabilities() -> None:
    value = score(get_metric("logloss"), np.array([1]), np.array([[1.0, 0.0]]))
    assert math.isfinite(value) and value == pytest.approx(-math.log(1e-15), rel=1e-3)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.lists(st.tuples(st.booleans(), st.integers(0, 6)), min_size=2, max_size=60).filter(
        lambda rows: 0 < sum(p for p, _ in rows) < len(rows)
    )
)
def test_binary_auc_equals_scikit_learns_with_ties(rows: list[tuple[bool, int]]) -> None:
    positive = np.array([p for p, _ in rows])
    score = np.array([s / 6 for _, s in rows])  # few distinct values: many ties
    assert binary_auc(positive, score) == pytest.approx(skm.roc_auc_score(positive, score))
