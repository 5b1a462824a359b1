"""Model bundles: save/load round trip and integrity checks."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from tabstream.adapters.artifacts.local import LocalArtifactStore
from tabstream.pipeline.families.xgboost import XGBoostFamily
from tabstream.pipeline.finish.bundle import (
    Bundle,
    BundleIntegrityError,
    FoldModel,
    Member,
    load_bundle,
    save_bundle,
)
from tabstream.pipeline.finish.ensemble import pool
from tabstream.pipeline.tasks.preprocess import Preprocessor
from tabstream.pipeline.types import ProblemSpec

SPEC = ProblemSpec("binclass", "label", ("no", "yes"))


def _table(n: int, seed: int) -> tuple[pa.Table, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    colour = rng.choice(["red", "blue"], size=n)
    y = ((x > 0) ^ (colour == "red")).astype(np.int64)
    return pa.table({"x": x, "colour": colour}), y


def _fold(seed: int) -> FoldModel:
    table, y = _table(120, seed)
    pre = Preprocessor("tree").fit(table)
    X = pre.transform(table)
    params = {"n_estimators": 20, "max_depth": 3, "n_threads": 1}
    model = XGBoostFamily().fit(X, y, None, None, params, SPEC, "cpu", seed)
    return FoldModel(pre.state(), model.to_files())


def _bundle() -> Bundle:
    members = [Member("xgboost", [_fold(0), _fold(1)], 0.75), Member("xgboost", [_fold(2)], 0.25)]
    features = [("x", "double"), ("colour", "string")]
    return Bundle("ensemble", SPEC, features, members, {"auc": 0.9})


def test_round_trip_predicts_labels(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    uri, digest = save_bundle(store, "m1", _bundle())
    assert uri.endswith("models/m1/manifest.json")
    model = load_bundle(store, "m1", digest)
    table, _ = _table(30, 9)
    raw = model.predict_raw(table.append_column("extra", pa.array(range(30))))
    assert raw.shape == (30, 2) and np.allclose(raw.sum(axis=1), 1.0)
    assert set(model.predict(table)) <= {"no", "yes"}
    assert model.metrics == {"auc": 0.9}


def test_tampered_file_is_refused(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    _, digest = save_bundle(store, "m2", _bundle())
    key = "models/m2/m1/f0/file0"
    store.put_bytes(key, store.get_bytes(key) + b" ")
    with pytest.raises(BundleIntegrityError, match="file0"):
        load_bundle(store, "m2", digest)


def test_wrong_digest_is_refused(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    save_bundle(store, "m3", _bundle())
    with pytest.raises(BundleIntegrityError):
        load_bundle(store, "m3", "0" * 64)


def test_fold_weights_blend_the_fold_models(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    folds = [_fold(0), _fold(1)]
    features = _bundle().features
    table, _ = _table(40, 7)
    preds = []
    for i, fold in enumerate(folds):
        _, digest = save_bundle(
            store, f"f{i}", Bundle("single", SPEC, features, [Member("xgboost", [fold])])
        )
        preds.append(load_bundle(store, f"f{i}", digest).predict_raw(table))
    blended = Member("xgboost", folds, 1.0, fold_weights=[0.2, 0.8])
    _, digest = save_bundle(store, "b", Bundle("ensemble", SPEC, features, [blended]))
    raw = load_bundle(store, "b", digest).predict_raw(table)
    np.testing.assert_allclose(raw, 0.2 * preds[0] + 0.8 * preds[1], rtol=1e-6)


def test_fold_weights_must_fit_the_folds(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    bad = Member("xgboost", [_fold(0), _fold(1)], 1.0, fold_weights=[0.5])
    with pytest.raises(ValueError, match="fold_weights"):
        save_bundle(store, "bad", Bundle("ensemble", SPEC, _bundle().features, [bad]))


def test_version_1_bundles_still_load_as_plain_means(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    _, digest = save_bundle(store, "new", _bundle())
    manifest = json.loads(store.get_bytes("models/new/manifest.json"))
    manifest["bundle_version"] = 1
    for member in manifest["members"]:
        del member["fold_weights"]
    raw = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    store.put_bytes("models/old/manifest.json", raw)
    for key in _files_of(manifest):
        store.put_bytes(f"models/old/{key}", store.get_bytes(f"models/new/{key}"))
    table, _ = _table(25, 3)
    old = load_bundle(store, "old", hashlib.sha256(raw).hexdigest())
    np.testing.assert_allclose(
        old.predict_raw(table), load_bundle(store, "new", digest).predict_raw(table)
    )


def test_log_pooled_bundle_predicts_the_log_pool_of_its_members(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    bundle = _bundle()
    table, _ = _table(30, 5)
    alone = []
    for i, member in enumerate(bundle.members):
        single = Bundle("single", SPEC, bundle.features, [replace(member, weight=1.0)])
        _, digest = save_bundle(store, f"m{i}", single)
        alone.append(load_bundle(store, f"m{i}", digest).predict_raw(table))
    _, digest = save_bundle(store, "log", replace(bundle, pooling="log"))
    manifest = json.loads(store.get_bytes("models/log/manifest.json"))
    assert manifest["bundle_version"] == 3 and manifest["pooling"] == "log"
    raw = load_bundle(store, "log", digest).predict_raw(table)
    np.testing.assert_allclose(raw, pool(alone, [0.75, 0.25], "log"), rtol=1e-6)
    assert not np.allclose(raw, pool(alone, [0.75, 0.25], "linear"))


def test_unknown_pooling_is_refused(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    save_bundle(store, "new", _bundle())
    manifest = json.loads(store.get_bytes("models/new/manifest.json"))
    manifest["pooling"] = "median"
    raw = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    store.put_bytes("models/odd/manifest.json", raw)
    with pytest.raises(BundleIntegrityError, match="pooling"):
        load_bundle(store, "odd", hashlib.sha256(raw).hexdigest())


def _files_of(manifest: dict[str, Any]) -> list[str]:
    keys = []
    for member in manifest["members"]:
        for fold in member["folds"]:
            keys += [fold["preprocessor"]["key"], *(f["key"] for f in fold["files"])]
    return keys
