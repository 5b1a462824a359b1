"""Caruana ensemble selection."""

from __future__ import annotations

import numpy as np
import pytest

from tabstream.pipeline.finish.ensemble import caruana, pool, pooling_for


def _logloss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-12, 1.0)
    return float(-np.log(p[np.arange(len(y)), y]).mean())


def _mse(y: np.ndarray, p: np.ndarray) -> float:
    return float(((y - p) ** 2).mean())


def _noisy_probas(rng: np.random.Generator, y: np.ndarray, k: int, noise: float) -> np.ndarray:
    logits = np.eye(k)[y] * 2 + rng.normal(scale=noise, size=(len(y), k))
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_never_worse_than_best_single_and_weights_sum_to_one(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=200)
    cands = [_noisy_probas(rng, y, 3, noise) for noise in (1.0, 1.5, 2.0, 3.0, 5.0)]
    sel = caruana(cands, y, _logloss, init_size=3, n_iterations=20)
    best_single = min(_logloss(y, c) for c in cands)
    assert sel.loss <= best_single + 1e-12
    assert sel.weights.sum() == pytest.approx(1.0)
    ens = sum(w * c for w, c in zip(sel.weights, cands, strict=True))
    assert _logloss(y, ens) == pytest.approx(sel.loss)


def test_replacement_picks_a_candidate_several_times() -> None:
    y = np.zeros(50)
    good, bias_up, bias_down = np.full(50, 0.1), np.full(50, 1.0), np.full(50, -3.0)
    sel = caruana([good, bias_up, bias_down], y, _mse, init_size=1, n_iterations=10)
    assert sel.counts.max() > 1
    assert sel.loss <= _mse(y, good)


def test_single_bad_init_does_not_hurt_and_is_deterministic() -> None:
    y = np.zeros(10)
    cands = [np.full(10, 0.0), np.full(10, 5.0), np.full(10, 5.0)]
    a = caruana(cands, y, _mse, init_size=3, n_iterations=5)
    b = caruana(cands, y, _mse, init_size=3, n_iterations=5)
    assert a.loss == 0.0
    assert a.members == [0]
    assert np.array_equal(a.counts, b.counts)


def test_log_pool_of_two_classes_averages_the_logits() -> None:
    a = np.array([[0.2, 0.8], [0.9, 0.1]])
    b = np.array([[0.5, 0.5], [0.6, 0.4]])
    pooled = pool([a, b], [0.25, 0.75], "log")
    logit = 0.25 * np.log(a[:, 1] / a[:, 0]) + 0.75 * np.log(b[:, 1] / b[:, 0])
    np.testing.assert_allclose(pooled[:, 1], 1 / (1 + np.exp(-logit)))
    np.testing.assert_allclose(pooled.sum(axis=1), 1.0)
    np.testing.assert_allclose(pool([a, b], [0.25, 0.75], "linear"), 0.25 * a + 0.75 * b)


def test_log_pool_stays_sure_where_the_members_agree() -> None:
    sure = np.array([[0.998, 0.001, 0.001]])
    unsure = np.array([[0.9, 0.05, 0.05]])
    log_p = pool([sure, unsure], [0.9, 0.1], "log")[0, 0]
    linear_p = pool([sure, unsure], [0.9, 0.1], "linear")[0, 0]
    assert log_p > 0.997 > linear_p


def test_pooling_follows_the_task_kind() -> None:
    assert pooling_for("binclass") == pooling_for("multiclass") == "log"
    assert pooling_for("regression") == "linear"


@pytest.mark.parametrize("seed", range(3))
def test_log_pooled_selection_reports_the_loss_of_its_log_pool(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=200)
    cands = [_noisy_probas(rng, y, 3, noise) for noise in (1.0, 1.5, 2.0, 3.0)]
    sel = caruana(cands, y, _logloss, init_size=2, n_iterations=15, pooling="log")
    assert sel.loss <= min(_logloss(y, c) for c in cands) + 1e-12
    assert _logloss(y, pool(cands, list(sel.weights), "log")) == pytest.approx(sel.loss)
