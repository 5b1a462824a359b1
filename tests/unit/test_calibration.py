"""Calibration of a classification ensemble by temperature (``ensemble.fit_temperature``,
``register._calibrated``): chosen only when it lowers the OOF loss, saved as scaled log-pool
weights, so the bundle predicts what the OOF metrics describe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tabstream.pipeline.finish.bundle import load_bundle
from tabstream.pipeline.finish.ensemble import TEMPERATURES, fit_temperature, pool, temper
from tests.unit.pipeline_support import of_type, request, run_collect, store_with


def _logloss(y: np.ndarray, p: np.ndarray) -> float:
    return float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-15, 1.0)).mean())


def _error_rate(y: np.ndarray, p: np.ndarray) -> float:
    return float((p.argmax(axis=1) != y).mean())


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def _calibrated_case(seed: int, n: int = 3000, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from known class logits: the true probabilities are calibrated."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n, k))
    probs = _softmax(logits)
    y = np.array([rng.choice(k, p=row) for row in probs])
    return y, logits


def test_tempering_sharpens_below_one_and_keeps_rows_and_rankings() -> None:
    _, logits = _calibrated_case(0, n=50, k=2)
    probs = _softmax(logits)
    assert np.allclose(temper(probs, 1.0), probs)
    sharp, soft = temper(probs, 0.5), temper(probs, 2.0)
    assert np.allclose(sharp.sum(axis=1), 1.0) and np.allclose(soft.sum(axis=1), 1.0)
    assert (sharp.max(axis=1) >= probs.max(axis=1) - 1e-12).all()
    assert (soft.max(axis=1) <= probs.max(axis=1) + 1e-12).all()
    y = (probs[:, 1] > 0.5).astype(int)  # any labels: the binary ranking is unchanged
    y[:5] = 1 - y[:5]
    assert roc_auc_score(y, sharp[:, 1]) == pytest.approx(roc_auc_score(y, probs[:, 1]))


@pytest.mark.parametrize("seed", range(3))
def test_the_temperature_undoes_over_and_under_confidence(seed: int) -> None:
    y, logits = _calibrated_case(seed)
    over, over_loss = fit_temperature(_softmax(3.0 * logits), y, _logloss)
    assert 2.0 <= over <= 4.0 and over_loss < _logloss(y, _softmax(3.0 * logits))
    under, under_loss = fit_temperature(_softmax(logits / 3.0), y, _logloss)
    assert 0.25 <= under <= 0.5 and under_loss < _logloss(y, _softmax(logits / 3.0))
    true, _ = fit_temperature(_softmax(logits), y, _logloss)
    assert 2**-0.25 <= true <= 2**0.25  # calibrated: within two grid steps of 1


def test_a_loss_blind_to_confidence_keeps_temperature_one() -> None:
    y, logits = _calibrated_case(1)
    probs = _softmax(3.0 * logits)
    assert fit_temperature(probs, y, _error_rate) == (1.0, _error_rate(y, probs))
    assert 1.0 in TEMPERATURES


def test_a_tempered_log_pool_is_the_pool_with_weights_divided_by_the_temperature() -> None:
    _, logits = _calibrated_case(2, n=100, k=3)
    rng = np.random.default_rng(2)
    members = [_softmax(logits + rng.normal(scale=s, size=logits.shape)) for s in (0.5, 1.0)]
    weights = [0.7, 0.3]
    tempered = temper(pool(members, weights, "log"), 0.6)
    assert np.allclose(pool(members, [w / 0.6 for w in weights], "log"), tempered)


def test_a_multiclass_run_saves_and_reports_its_calibrated_ensemble(tmp_path: Path) -> None:
    store, ref = store_with(tmp_path, "segment", 600)
    req = request(
        "segment",
        model_types=["extratrees", "xgboost"],
        n_trials=1,
        n_splits=3,
        ensemble=True,
        metrics=["logloss"],
        random_state=0,
    )
    result, events = run_collect(store, ref, req)
    (note,) = [n for n in result.notes if n.startswith("ensemble calibrated: temperature ")]
    temperature = min(TEMPERATURES, key=lambda t: abs(t - float(note.split()[3])))
    before, after = float(note.split()[-3]), float(note.split()[-1])
    assert after < before
    (reg,) = of_type(events, "ModelRegistered")
    manifest = json.loads(store.get_bytes(f"models/{reg.model_id}/manifest.json"))
    assert manifest["combiner"] == "pool"  # the stacker did not beat the tempered pool
    saved = sum(m["weight"] for m in manifest["members"])
    assert saved == pytest.approx(1.0 / temperature)
    assert result.ensemble is not None
    assert sum(m.weight for m in result.ensemble.members) == pytest.approx(1.0)
    assert result.ensemble.metrics["logloss"] == pytest.approx(after, rel=1e-3)
    model = load_bundle(store, str(reg.model_id), reg.sha256)
    assert model.metrics == result.ensemble.metrics
    raw = model.predict_raw(store.read_parquet(ref.key).slice(0, 20))
    assert np.allclose(raw.sum(axis=1), 1.0)
