"""The stacker: a second layer over the Caruana members' OOF predictions, chosen when better."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from tabstream.adapters.artifacts.local import LocalArtifactStore
from tabstream.pipeline.finish import register, stacker
from tabstream.pipeline.finish.bundle import (
    Bundle,
    BundleIntegrityError,
    Member,
    load_bundle,
    save_bundle,
)
from tabstream.pipeline.finish.ensemble import caruana, pool, pooling_for
from tabstream.pipeline.finish.stacker import Stacker, fit_stacker
from tabstream.pipeline.search.rows import fold_metrics
from tabstream.pipeline.search.scoring import get_metric
from tabstream.pipeline.tasks.splits import make_splits
from tabstream.pipeline.types import ProblemSpec
from tests.unit.pipeline_support import of_type, request, run_collect, store_with
from tests.unit.test_bundle import SPEC, _bundle, _table

BINARY = ProblemSpec("binclass", "label", ("no", "yes"))
REGRESSION = ProblemSpec("regression", "label")


def _job(spec: ProblemSpec, y: np.ndarray, n_splits: int | None, metric: str) -> Any:
    splits = make_splits(y, spec, n_splits, 0)
    covered = np.unique(np.concatenate([va for _, va in splits]))
    ctx = SimpleNamespace(spec=spec, y=y, splits=splits, covered=covered)
    ctx.metrics = (get_metric(metric),)
    return SimpleNamespace(ctx=ctx, recipe=None, deadline=None, notes=[])


def _probas(logit: np.ndarray) -> np.ndarray:
    return np.stack([1 / (1 + np.exp(logit)), 1 / (1 + np.exp(-logit))], axis=1)


def _binary_case(seed: int, shrink: float, n: int = 1500) -> tuple[np.ndarray, list[np.ndarray]]:
    """Labels drawn from a known logit; members see it scaled by ``shrink`` plus noise."""
    rng = np.random.default_rng(seed)
    logit = rng.normal(scale=2.0, size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    noise = (0.0, 0.3, 0.6)
    return y, [_probas(shrink * (logit + rng.normal(scale=s, size=n))) for s in noise]


def _try(job: Any, members: list[np.ndarray]) -> tuple[Any, str]:
    """Caruana then ``register._stacked`` over the selected members, as the finish does."""
    ctx = job.ctx
    y, loss, pooling = ctx.y[ctx.covered], register._ensemble_loss(ctx), pooling_for(ctx.spec.kind)
    sel = caruana([m[ctx.covered] for m in members], y, loss, 3, 20, pooling)
    order = sorted(sel.members, key=lambda i: (-sel.weights[i], i))
    oofs = [members[i][ctx.covered] for i in order]
    oof = pool(oofs, [sel.weights[i] for i in order], pooling)
    metrics, _ = fold_metrics(ctx, oof)
    stacked = register._stacked(job, oofs, loss, loss(y, oof), metrics)
    return stacked, job.notes[-1] if job.notes else ""


def test_a_folds_oof_prediction_never_saw_that_folds_labels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stacker, "STRENGTHS", (1e-3,))
    y, members = _binary_case(0, 0.4, n=600)
    folds = [va for _, va in make_splits(y, BINARY, 4, 0)]
    loss = register._ensemble_loss(_job(BINARY, y, 4, "logloss").ctx)
    base = fit_stacker(members, y, folds, "log", loss)
    assert base is not None
    for held in folds:
        flipped = y.copy()
        flipped[held] = 1 - flipped[held]
        other = fit_stacker(members, flipped, folds, "log", loss)
        assert other is not None
        np.testing.assert_array_equal(other.oof[held], base.oof[held])
        rest = np.setdiff1d(np.arange(len(y)), held)
        assert not np.allclose(other.oof[rest], base.oof[rest])


def test_shrunk_members_are_stacked_for_classification() -> None:
    y, members = _binary_case(1, 0.3)
    job = _job(BINARY, y, 5, "logloss")
    stacked, note = _try(job, members)
    assert stacked is not None
    assert note.startswith("stacker over ") and note.endswith(": chosen")
    stacker_, metrics = stacked
    assert len(stacker_.coefs) == 5  # one layer per fold
    caruana_logloss = float(note.split("vs Caruana ")[1].split(":")[0])
    assert metrics["logloss"] < caruana_logloss - 0.05


def test_shrunk_members_are_stacked_for_regression() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(size=1200)
    members = [0.5 * (y + rng.normal(scale=s, size=len(y))) for s in (0.2, 0.4, 0.6)]
    stacked, note = _try(_job(REGRESSION, y, 4, "rmse"), members)
    assert stacked is not None and note.endswith(": chosen")
    for coef in stacked[0].coefs:  # the layers undo the members' shrinking by half
        assert coef.sum() == pytest.approx(2.0, abs=0.2)


def test_calibrated_members_keep_caruana() -> None:
    y, members = _binary_case(1, 1.0, n=400)  # the first member is the true probabilities
    job = _job(BINARY, y, 5, "logloss")
    stacked, note = _try(job, members)
    assert stacked is None and note.endswith(": kept Caruana")


def test_no_stacker_on_a_holdout_forecasting_folds_or_a_spent_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    y, members = _binary_case(4, 0.3, n=400)
    assert fit_stacker(members, y, [np.arange(80)], "log", lambda a, b: 0.0) is None
    holdout = _job(BINARY, y, None, "logloss")
    assert _try(holdout, members) == (None, "")
    forecasting = _job(BINARY, y, 3, "logloss")
    forecasting.recipe = {"kind": "forecasting"}
    assert _try(forecasting, members) == (None, "")
    spent = _job(BINARY, y, 3, "logloss")
    spent.deadline = time.monotonic() - 1.0
    stacked, note = _try(spent, members)
    assert stacked is None and note.startswith("stacker not tried: expected to take")
    monkeypatch.setattr(register, "STACKER_MAX_S", 0.0)  # too costly, budget or not
    stacked, note = _try(_job(BINARY, y, 3, "logloss"), members)
    assert stacked is None and note.startswith("stacker not tried")


def test_a_class_missing_from_a_folds_training_rows_gets_a_tiny_probability() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, size=300)
    y[:10] = 2  # class 2 only in the first fold
    members = [np.eye(3)[y] * 0.7 + 0.1 + rng.random((300, 3)) * 0.1 for _ in range(2)]
    members = [m / m.sum(axis=1, keepdims=True) for m in members]
    folds = [np.arange(0, 100), np.arange(100, 200), np.arange(200, 300)]
    fit = fit_stacker(members, y, folds, "log", lambda a, b: 0.0)
    assert fit is not None
    np.testing.assert_allclose(fit.oof.sum(axis=1), 1.0)
    assert fit.oof[:10, 2].max() < 1e-6  # fold 0's layer never saw class 2
    assert fit.oof[100:, 2].mean() < 0.05
    assert np.mean(fit.oof.argmax(axis=1) == y) > 0.9


def _stacked_bundle() -> tuple[Bundle, Stacker]:
    rng = np.random.default_rng(6)
    coefs = tuple(rng.normal(size=(4, 2)) for _ in range(3))
    layer = Stacker("log", coefs, tuple(rng.normal(size=2) for _ in range(3)))
    return replace(_bundle(), pooling="log", stacker=layer), layer


def test_a_stacked_bundle_predicts_as_its_stacker(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    bundle, layer = _stacked_bundle()
    table, _ = _table(30, 5)
    alone = []
    for i, member in enumerate(bundle.members):
        single = Bundle("single", SPEC, bundle.features, [Member("xgboost", member.folds)])
        _, digest = save_bundle(store, f"m{i}", single)
        alone.append(load_bundle(store, f"m{i}", digest).predict_raw(table))
    _, digest = save_bundle(store, "stack", bundle)
    manifest = json.loads(store.get_bytes("models/stack/manifest.json"))
    assert manifest["combiner"] == "stack" and manifest["bundle_version"] == 4
    assert manifest["stacker"]["key"] == "stacker.safetensors"
    model = load_bundle(store, "stack", digest)
    raw = model.predict_raw(table)
    np.testing.assert_allclose(raw, layer.predict(alone), rtol=1e-6)
    assert not np.allclose(raw, pool(alone, [0.75, 0.25], "log"))
    assert set(model.predict(table)) <= {"no", "yes"}


def test_a_tampered_or_misfitting_stacker_is_refused(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    bundle, _ = _stacked_bundle()
    _, digest = save_bundle(store, "s", bundle)
    key = "models/s/stacker.safetensors"
    store.put_bytes(key, store.get_bytes(key)[:-1] + b"\x00")
    with pytest.raises(BundleIntegrityError, match="stacker"):
        load_bundle(store, "s", digest)
    wide = Stacker("log", (np.zeros((6, 2)),), (np.zeros(2),))  # three members' worth
    _, digest = save_bundle(store, "w", replace(bundle, stacker=wide))
    with pytest.raises(BundleIntegrityError, match="stacker"):
        load_bundle(store, "w", digest)


def test_stacker_bytes_round_trip_for_regression() -> None:
    layer = Stacker("linear", (np.array([0.5, 0.7]),) * 2, (np.array([0.1]),) * 2)
    back = Stacker.from_bytes(layer.to_bytes(), "linear", 2, 0)
    preds = [np.array([1.0, 2.0]), np.array([3.0, 4.0])]
    np.testing.assert_allclose(back.predict(preds), 0.5 * preds[0] + 0.7 * preds[1] + 0.1)
    assert back.predict([np.zeros(0), np.zeros(0)]).shape == (0,)
    with pytest.raises(ValueError):
        Stacker.from_bytes(layer.to_bytes(), "linear", 3, 0)


def test_a_run_registers_a_loadable_ensemble_and_notes_the_stacker(tmp_path: Path) -> None:
    store, ref = store_with(tmp_path, "credit_g", 300)
    req = request("credit_g", n_trials=4, n_splits=3, ensemble=True)
    result, events = run_collect(store, ref, req)
    (note,) = [n for n in result.notes if n.startswith("stacker over ")]
    (reg,) = of_type(events, "ModelRegistered")
    manifest = json.loads(store.get_bytes(f"models/{reg.model_id}/manifest.json"))
    assert manifest["combiner"] == ("stack" if note.endswith(": chosen") else "pool")
    model = load_bundle(store, str(reg.model_id), reg.sha256)
    assert result.ensemble is not None and model.metrics == result.ensemble.metrics
    raw = model.predict_raw(store.read_parquet(ref.key).slice(0, 20))
    assert raw.shape == (20, 2) and np.allclose(raw.sum(axis=1), 1.0)
