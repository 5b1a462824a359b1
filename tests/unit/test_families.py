"""Model families: fit/predict contract, quality, safe round trip, determinism, search spaces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import numpy as np
import optuna
import pytest
import torch
from safetensors import safe_open
from sklearn.datasets import make_classification, make_regression

from tabstream.pipeline.families import Families, default_model_types
from tabstream.pipeline.options import FamilyOptions
from tabstream.pipeline.types import Family, FeatureMatrix, FittedModel, ProblemSpec

torch.set_num_threads(1)

SPECS = {
    "binclass": ProblemSpec("binclass", "y", ("no", "yes")),
    "multiclass": ProblemSpec("multiclass", "y", ("a", "b", "c")),
    "regression": ProblemSpec("regression", "y"),
}
TINY: dict[str, dict[str, Any]] = {
    "xgboost": {"n_estimators": 60, "n_threads": 1},
    "lightgbm": {"num_boost_round": 60, "n_threads": 1},
    "catboost": {"iterations": 60, "learning_rate": 0.2, "n_threads": 1},
    "extratrees": {"n_estimators": 30, "n_threads": 1},
    "randomforest": {"n_estimators": 30, "n_threads": 1},
    "tabm": {
        "k": 4,
        "n_blocks": 1,
        "d_block": 64,
        "batch_size": 64,
        "max_epochs": 30,
        "patience": 5,
        "lr": 3e-3,
        "use_embeddings": True,
        "n_bins": 8,
        "d_embedding": 8,
        "n_threads": 1,
    },
    "xrfm": {"iters": 2, "max_leaf_size": 200, "n_threads": 1},
    "tabicl": {"n_estimators": 2, "n_threads": 1},
}
CASES = [(name, kind) for name in TINY for kind in SPECS]
TORCH_ZIP_MAGIC = b"PK\x03\x04"


def _matrix(values: np.ndarray) -> FeatureMatrix:
    d = values.shape[1]
    return FeatureMatrix(values.astype(np.float32), tuple(f"f{i}" for i in range(d)), (False,) * d)


def _data(
    kind: str,
) -> tuple[FeatureMatrix, np.ndarray, FeatureMatrix, np.ndarray, FeatureMatrix, np.ndarray]:
    if kind == "regression":
        X, y = make_regression(600, 6, n_informative=4, noise=5.0, random_state=0)
        y = y.astype(np.float64)
    else:
        n_classes = 2 if kind == "binclass" else 3
        X, y = make_classification(
            600,
            6,
            n_informative=4,
            n_redundant=0,
            n_classes=n_classes,
            class_sep=1.5,
            random_state=0,
        )
        y = y.astype(np.int64)
    X = (X - X.mean(0)) / X.std(0)
    return _matrix(X[:350]), y[:350], _matrix(X[350:450]), y[350:450], _matrix(X[450:]), y[450:]


_FITTED: dict[tuple[str, str], FittedModel] = {}
_FAMILIES: list[Families] = []


def _fit(name: str, kind: str, seed: int = 0) -> FittedModel:
    X, y, Xv, yv, _, _ = _data(kind)
    family = _family(name)
    return family.fit(X, y, Xv, yv, TINY[name], SPECS[kind], "cpu", seed)


def _fitted(name: str, kind: str) -> FittedModel:
    if (name, kind) not in _FITTED:
        _FITTED[(name, kind)] = _fit(name, kind)
    return _FITTED[(name, kind)]


@pytest.fixture(autouse=True)
def _tiny_tabicl(tabicl_options: FamilyOptions) -> None:
    """Every test here builds its families with the tiny TabICL checkpoints."""
    if not _FAMILIES:
        _FAMILIES.append(Families(tabicl_options))


def _family(name: str) -> Family:
    """The family ``name``, configured with the tiny TabICL checkpoints."""
    return _FAMILIES[0][name]


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_fit_predict_shapes_and_quality(name: str, kind: str) -> None:
    spec = SPECS[kind]
    _, y, _, _, Xt, yt = _data(kind)
    pred = _fitted(name, kind).predict_raw(Xt)
    if spec.is_classification:
        assert pred.shape == (Xt.n_rows, spec.n_classes)
        assert np.all(pred >= 0) and np.allclose(pred.sum(axis=1), 1.0)
        if name != "tabicl":  # the test checkpoint has random weights
            majority = np.mean(yt == np.bincount(y).argmax())
            assert np.mean(pred.argmax(axis=1) == yt) > majority + 0.15
    else:
        assert pred.shape == (Xt.n_rows,) and np.all(np.isfinite(pred))
        if name != "tabicl":
            assert np.mean((pred - yt) ** 2) < 0.7 * np.mean((yt - y.mean()) ** 2)


def _assert_safe_files(files: dict[str, bytes]) -> None:
    """Each file parses as its declared safe format (so none is a pickle or torch zip)."""
    assert files
    for fname, data in files.items():
        assert isinstance(data, bytes) and not data.startswith(TORCH_ZIP_MAGIC), fname
        if fname.endswith(".json"):
            assert data[:1] == b"{", fname
            json.loads(data)
        elif fname.endswith(".safetensors"):
            header_len = int.from_bytes(data[:8], "little")
            header = json.loads(data[8 : 8 + header_len])
            assert all("dtype" in v for k, v in header.items() if k != "__metadata__")
        elif fname.endswith(".txt"):
            assert data.startswith(b"tree\n"), fname  # LightGBM's text model
        elif fname.endswith(".cbm"):
            assert data[:4] == b"CBM1", fname  # CatBoost's native model
        else:
            assert fname.endswith(".ubj") and data[:1] == b"{", fname


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_to_files_load_round_trip_is_exact_and_pickle_free(name: str, kind: str) -> None:
    model = _fitted(name, kind)
    _, _, _, _, Xt, _ = _data(kind)
    files = model.to_files()
    _assert_safe_files(files)
    loaded = _family(name).load(files, SPECS[kind])
    assert loaded.family == name
    np.testing.assert_array_equal(loaded.predict_raw(Xt), model.predict_raw(Xt))


@pytest.mark.parametrize("name", list(TINY))
def test_same_seed_same_predictions(name: str) -> None:
    _, _, _, _, Xt, _ = _data("multiclass")
    a = _fit(name, "multiclass", seed=3).predict_raw(Xt)
    b = _fit(name, "multiclass", seed=3).predict_raw(Xt)
    np.testing.assert_array_equal(a, b)


def test_safetensors_files_open_with_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    path.write_bytes(_fitted("tabm", "binclass").to_files()["model.safetensors"])
    with safe_open(str(path), framework="pt") as fh:
        assert list(fh.keys())


@pytest.mark.parametrize("name", list(TINY))
@pytest.mark.parametrize("kind", list(SPECS))
def test_suggest_samples_the_space(name: str, kind: str) -> None:
    family = _family(name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        trial = study.ask()
        params = family.suggest(trial, SPECS[kind])
        assert set(family.default_params(SPECS[kind])) <= set(params)
        study.tell(trial, 0.0)
    assert study.trials[0].params


def test_xgboost_suggest_with_fixed_trial_and_ranges() -> None:
    fixed = {
        "learning_rate": 0.05,
        "grow_policy": "depthwise",
        "max_depth": 4,
        "min_child_weight": 2.0,
        "subsample": 0.9,
        "colsample_bytree": 0.7,
        "reg_lambda": 0.1,
        "reg_alpha": 0.01,
    }
    params = _family("xgboost").suggest(
        cast(optuna.Trial, optuna.trial.FixedTrial(fixed)), SPECS["binclass"]
    )
    assert {k: params[k] for k in fixed} == fixed


def test_xgboost_lossguide_trees_keep_to_their_leaves() -> None:
    fixed = {
        "learning_rate": 0.1,
        "grow_policy": "lossguide",
        "max_leaves": 8,
        "min_child_weight": 0.1,
        "subsample": 1.0,
        "colsample_bytree": 1.0,
        "reg_lambda": 1.0,
        "reg_alpha": 0.01,
    }
    family = _family("xgboost")
    params = family.suggest(cast(optuna.Trial, optuna.trial.FixedTrial(fixed)), SPECS["regression"])
    assert params["grow_policy"] == "lossguide" and params["max_depth"] == 0
    params |= {"n_estimators": 30, "n_threads": 1}
    X, y, Xv, yv, _, _ = _data("regression")
    model = family.fit(X, y, Xv, yv, params, SPECS["regression"], "cpu", 0)
    booster = model.booster  # type: ignore[attr-defined]
    config = json.loads(booster.save_config())
    assert config["learner"]["gradient_booster"]["tree_train_param"]["grow_policy"] == "lossguide"
    leaves = [tree.count("leaf=") for tree in booster.get_dump()]
    assert max(leaves) == 8


def test_tabm_suggested_config_trains() -> None:
    family = _family("tabm")
    fixed = {
        "use_weight_decay": False,
        "lr": 1e-3,
        "n_blocks": 1,
        "d_block": 128,
        "dropout": 0.1,
        "use_embeddings": False,
    }
    params = family.suggest(cast(optuna.Trial, optuna.trial.FixedTrial(fixed)), SPECS["regression"])
    params |= {"k": 2, "max_epochs": 3, "n_threads": 1}
    X, y, Xv, yv, Xt, _ = _data("regression")
    model = family.fit(X, y, Xv, yv, params, SPECS["regression"], "cpu", 0)
    assert model.predict_raw(Xt).shape == (Xt.n_rows,)


def test_xgboost_categorical_missing_and_early_stopping() -> None:
    rng = np.random.default_rng(0)
    n = 800
    cat = rng.integers(0, 5, n).astype(np.float32)
    num = rng.normal(size=n).astype(np.float32)
    num[rng.random(n) < 0.1] = np.nan
    clean = ((cat == 2) | (np.nan_to_num(num) > 1)).astype(np.int64)
    y = np.where(rng.random(n) < 0.1, 1 - clean, clean)
    X = FeatureMatrix(np.column_stack([cat, num]), ("c", "x"), (True, False), (5,))
    tr, va = _matrix_rows(X, slice(0, 500)), _matrix_rows(X, slice(500, n))
    spec = SPECS["binclass"]
    params = {"n_estimators": 500, "early_stopping_rounds": 10, "n_threads": 1}
    model = _family("xgboost").fit(tr, y[:500], va, y[500:], params, spec, "cpu", 0)
    assert model.best_iteration < 400  # type: ignore[attr-defined]
    pred = model.predict_raw(va)
    assert np.mean(pred.argmax(1) == clean[500:]) > 0.95
    loaded = _family("xgboost").load(model.to_files(), spec)
    np.testing.assert_array_equal(loaded.predict_raw(va), pred)


def _matrix_rows(X: FeatureMatrix, rows: slice) -> FeatureMatrix:
    return FeatureMatrix(X.values[rows], X.names, X.categorical, X.cardinalities)


def test_tabm_and_xrfm_train_without_validation_set() -> None:
    X, y, _, _, Xt, _ = _data("binclass")
    for name in ("tabm", "xrfm"):
        params = TINY[name] | {"max_epochs": 3}
        model = _family(name).fit(X, y, None, None, params, SPECS["binclass"], "cpu", 0)
        assert model.predict_raw(Xt).shape == (Xt.n_rows, 2)


def test_load_refuses_other_problem_kind() -> None:
    files = _fitted("xgboost", "binclass").to_files()
    with pytest.raises(ValueError, match="binclass"):
        _family("xgboost").load(files, SPECS["multiclass"])


def test_tabicl_unavailable_without_checkpoint() -> None:
    family = Families(FamilyOptions())["tabicl"]
    reason = family.available()
    assert reason is not None
    assert "TABSTREAM_TABICL_CHECKPOINT" in reason and "none is downloaded" in reason
    assert not family.supports(SPECS["binclass"], "cpu")
    assert not family.supports(SPECS["regression"], "cpu")
    X, y, _, _, _, _ = _data("binclass")
    with pytest.raises(RuntimeError, match="TABSTREAM_TABICL_CHECKPOINT"):
        family.fit(X, y, None, None, TINY["tabicl"], SPECS["binclass"], "cpu", 0)


def test_tabicl_missing_file_reason(tmp_path: Path) -> None:
    options = FamilyOptions(tabicl_checkpoint=tmp_path / "absent.ckpt")
    reason = Families(options)["tabicl"].available()
    assert reason is not None and "not found" in reason


def test_tabicl_load_checks_checkpoint_sha(tmp_path: Path) -> None:
    from tests.helpers.tabicl_checkpoint import build_tiny_checkpoint

    files = _fitted("tabicl", "binclass").to_files()
    other = build_tiny_checkpoint(tmp_path / "other.ckpt", seed=1)
    with pytest.raises(ValueError, match="differs"):
        Families(FamilyOptions(tabicl_checkpoint=other))["tabicl"].load(files, SPECS["binclass"])


def test_tabicl_subsamples_context() -> None:
    X, y, _, _, Xt, _ = _data("multiclass")
    params = TINY["tabicl"] | {"max_context_rows": 100}
    model = _family("tabicl").fit(X, y, None, None, params, SPECS["multiclass"], "cpu", 0)
    assert len(model.to_files()["context.safetensors"]) < 100 * 7 * 4 + 1000
    assert model.predict_raw(Xt).shape == (Xt.n_rows, 3)


def test_registry_and_default_model_types() -> None:
    families = Families()
    trees = ["lightgbm", "xgboost", "catboost", "extratrees", "randomforest"]
    assert set(families) == {*trees, "tabm", "xrfm", "tabicl"}
    assert all(f.name == n for n, f in families.items())
    with pytest.raises(KeyError, match="known"):
        _family("knn")
    assert default_model_types(5_000, 20, "cuda", True) == [*trees, "xrfm", "tabm", "tabicl"]
    assert default_model_types(5_000, 500, "cuda", True) == [*trees, "xrfm", "tabm"]
    assert default_model_types(50_000, 20, "cuda", True) == [*trees, "xrfm", "tabm"]
    assert default_model_types(500_000, 20, "cuda", True) == [*trees[:3], "tabm"]
    # on a CPU: cheapest first, no neural net or forest past 100k rows
    assert default_model_types(500_000, 20, "cpu", True) == ["lightgbm", "xgboost", "catboost"]
    assert default_model_types(5_000, 20, "cpu", True)[-1] == "tabicl"
