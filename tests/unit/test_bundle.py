"""Model bundles: save/load round trip and integrity checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tabstream.adapters.artifacts.local import LocalArtifactStore
from tabstream.pipeline.bundle import (
    Bundle,
    BundleIntegrityError,
    FoldModel,
    Member,
    load_bundle,
    save_bundle,
)
from tabstream.pipeline.families import get_family
from tabstream.pipeline.preprocess import Preprocessor
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
    model = get_family("xgboost").fit(X, y, None, None, params, SPEC, "cpu", seed)
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
