"""Forest families (extratrees, randomforest): fit/predict, exact pickle-free round trip, NaN and
categorical data, determinism, time checks, search space and node-layout checks."""

from __future__ import annotations

import json
import pickle
import re
import warnings
from typing import Any, cast

import numpy as np
import optuna
import pytest
import sklearn
from sklearn.datasets import make_classification, make_regression

from tabstream.pipeline.families._common import dump_json, load_json, pad_proba
from tabstream.pipeline.families.forests import (
    META_FILE,
    MODEL_FILE,
    ExtraTreesFamily,
    ForestModel,
    RandomForestFamily,
)
from tabstream.pipeline.options import FamilyOptions
from tabstream.pipeline.search.budget import OutOfTime, time_check
from tabstream.pipeline.types import FeatureMatrix, ProblemSpec

SPECS = {
    "binclass": ProblemSpec("binclass", "y", ("no", "yes")),
    "multiclass": ProblemSpec("multiclass", "y", ("a", "b", "c")),
    "regression": ProblemSpec("regression", "y"),
}
FAMILIES: dict[str, type[ExtraTreesFamily | RandomForestFamily]] = {
    "extratrees": ExtraTreesFamily,
    "randomforest": RandomForestFamily,
}
TINY = {"n_estimators": 12, "n_threads": 1}
CASES = [(name, kind) for name in FAMILIES for kind in SPECS]


def _family(name: str) -> ExtraTreesFamily | RandomForestFamily:
    return FAMILIES[name](FamilyOptions(threads=1))


def _matrix(values: np.ndarray, categorical: tuple[bool, ...] | None = None) -> FeatureMatrix:
    d = values.shape[1]
    flags = categorical or (False,) * d
    cards = tuple(int(np.nanmax(values[:, j])) + 1 for j in range(d) if flags[j])
    return FeatureMatrix(values.astype(np.float32), tuple(f"f{j}" for j in range(d)), flags, cards)


def _data(kind: str) -> tuple[FeatureMatrix, np.ndarray, FeatureMatrix, np.ndarray]:
    """400 rows (300 to train), 6 features, 10% missing values in two of them."""
    if kind == "regression":
        X, y = make_regression(400, 6, n_informative=4, noise=5.0, random_state=0)
    else:
        n_classes = SPECS[kind].n_classes
        X, y = make_classification(
            400, 6, n_informative=4, n_redundant=0, n_classes=n_classes, random_state=0
        )
        y = y.astype(np.int64)
    X[:, :2][np.random.default_rng(0).random((400, 2)) < 0.1] = np.nan
    return _matrix(X[:300]), y[:300], _matrix(X[300:]), y[300:]


def _fit(name: str, kind: str, seed: int = 0, **params: Any) -> ForestModel:
    X, y, _, _ = _data(kind)
    return _family(name).fit(X, y, None, None, TINY | params, SPECS[kind], "cpu", seed)


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_fit_predict_and_exact_round_trip(name: str, kind: str) -> None:
    spec, model = SPECS[kind], _fit(name, kind)
    _, y, Xt, yt = _data(kind)
    pred = model.predict_raw(Xt)
    if spec.is_classification:
        assert pred.shape == (Xt.n_rows, spec.n_classes) and np.allclose(pred.sum(1), 1.0)
        assert np.mean(pred.argmax(1) == yt) > np.mean(yt == np.bincount(y).argmax()) + 0.15
    else:
        assert pred.shape == (Xt.n_rows,) and pred.dtype == np.float64
        assert np.mean((pred - yt) ** 2) < 0.7 * np.var(yt)
    loaded = _family(name).load(model.to_files(), spec)
    assert loaded.family == name
    np.testing.assert_array_equal(loaded.predict_raw(Xt), pred)
    for forest in (model.forest, loaded.forest):  # scikit-learn's own sum, in tree order
        forest.set_params(n_jobs=1)
        if spec.is_classification:
            expected = pad_proba(forest.predict_proba(Xt.values), forest.classes_, spec.n_classes)
        else:
            expected = forest.predict(Xt.values)
        np.testing.assert_array_equal(expected, pred)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_rebuilt_trees_have_the_fitted_state(name: str) -> None:
    model = _fit(name, "multiclass")
    loaded = _family(name).load(model.to_files(), SPECS["multiclass"])
    assert loaded.forest.get_params() == model.forest.get_params()
    for fitted, rebuilt in zip(model.forest.estimators_, loaded.forest.estimators_, strict=True):
        assert type(rebuilt) is type(fitted) and rebuilt.get_params() == fitted.get_params()
        for attr in ("n_features_in_", "n_outputs_", "classes_", "n_classes_", "max_features_"):
            np.testing.assert_array_equal(getattr(rebuilt, attr), getattr(fitted, attr))
        a, b = fitted.tree_.__getstate__(), rebuilt.tree_.__getstate__()
        assert (a["node_count"], a["max_depth"]) == (b["node_count"], b["max_depth"])
        assert a["nodes"].tobytes() == b["nodes"].tobytes()
        assert a["values"].tobytes() == b["values"].tobytes()
    np.testing.assert_array_equal(
        loaded.forest.feature_importances_, model.forest.feature_importances_
    )


@pytest.mark.parametrize("name", list(FAMILIES))
def test_nan_and_categorical_columns(name: str) -> None:
    rng = np.random.default_rng(1)
    n = 600
    cat = rng.integers(0, 6, n).astype(np.float64)
    num = rng.normal(size=n)
    num[rng.random(n) < 0.2] = np.nan
    clean = (np.isin(cat, [1, 4]) | (num > 0.8)).astype(np.int64)
    y = np.where(rng.random(n) < 0.05, 1 - clean, clean)
    X = _matrix(np.column_stack([cat, num, rng.normal(size=n)]), (True, False, False))
    train = FeatureMatrix(X.values[:450], X.names, X.categorical, X.cardinalities)
    test = FeatureMatrix(X.values[450:], X.names, X.categorical, X.cardinalities)
    spec, family = SPECS["binclass"], _family(name)
    model = family.fit(train, y[:450], None, None, TINY | {"n_estimators": 30}, spec, "cpu", 0)
    pred = model.predict_raw(test)
    assert np.isnan(test.values).any() and np.mean(pred.argmax(1) == clean[450:]) > 0.9
    np.testing.assert_array_equal(family.load(model.to_files(), spec).predict_raw(test), pred)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_same_seed_same_predictions_on_any_thread_count(name: str) -> None:
    _, _, Xt, _ = _data("multiclass")
    a = _fit(name, "multiclass", seed=3).predict_raw(Xt)
    b = _fit(name, "multiclass", seed=3, n_threads=2)
    b.threads = 2
    np.testing.assert_array_equal(a, b.predict_raw(Xt))
    assert not np.array_equal(a, _fit(name, "multiclass", seed=4).predict_raw(Xt))


def test_fold_missing_a_class_is_padded() -> None:
    X, y, Xt, _ = _data("multiclass")
    keep = y != 1
    train = FeatureMatrix(X.values[keep], X.names, X.categorical)
    family, spec = _family("randomforest"), SPECS["multiclass"]
    model = family.fit(train, y[keep], None, None, TINY, spec, "cpu", 0)
    pred = model.predict_raw(Xt)
    assert pred.shape == (Xt.n_rows, 3) and np.all(pred[:, 1] == 0.0)
    assert np.allclose(pred.sum(1), 1.0)
    np.testing.assert_array_equal(family.load(model.to_files(), spec).predict_raw(Xt), pred)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_time_check_runs_between_chunks_and_stops_the_fit(name: str) -> None:
    calls: list[int] = []

    def stop_on_second_call() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise OutOfTime

    with time_check(stop_on_second_call), pytest.raises(OutOfTime):
        _fit(name, "binclass", n_estimators=16)
    assert len(calls) == 2
    calls.clear()
    with time_check(calls.clear):  # chunks that run to the end grow the very same forest
        chunked = _fit(name, "binclass", n_estimators=16)
    _, _, Xt, _ = _data("binclass")
    np.testing.assert_array_equal(
        chunked.predict_raw(Xt), _fit(name, "binclass", n_estimators=16).predict_raw(Xt)
    )


@pytest.mark.parametrize("name", list(FAMILIES))
@pytest.mark.parametrize("kind", list(SPECS))
def test_defaults_and_portfolio_lie_in_the_suggested_space(name: str, kind: str) -> None:
    family, spec = _family(name), SPECS[kind]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    sampled = family.suggest(trial, spec)
    assert set(family.default_params(spec)) <= set(sampled)
    assert type(sampled["max_features"]) in (str, float)
    portfolio = family.portfolio(spec)
    assert len(portfolio) == 2
    for config in portfolio:
        assert set(config) == set(trial.params)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a value out of an int range warns
            fixed = optuna.trial.FixedTrial(config)
            params = family.suggest(cast(optuna.Trial, fixed), spec)
        assert {k: params[k] for k in config} == config
        assert family.full_data_params(params, []) == params


def test_supports_every_kind_on_every_device() -> None:
    family = _family("extratrees")
    assert family.available() is None
    assert all(family.supports(spec, dev) for spec in SPECS.values() for dev in ("cpu", "cuda"))


def test_leaf_cap_bounds_the_trees() -> None:
    model = _fit("extratrees", "regression", max_leaf_nodes=16)
    assert max(e.tree_.n_leaves for e in model.forest.estimators_) == 16


def test_saved_files_are_safetensors_and_json_never_pickle() -> None:
    files = _fit("randomforest", "binclass").to_files()
    assert set(files) == {MODEL_FILE, META_FILE}
    for data in files.values():
        assert not data.startswith(b"\x80")
        with pytest.raises(pickle.UnpicklingError):
            pickle.loads(data)
    header = json.loads(files[MODEL_FILE][8 : 8 + int.from_bytes(files[MODEL_FILE][:8], "little")])
    assert {"nodes.threshold", "nodes.missing_go_to_left", "values"} <= set(header)
    assert load_json(files[META_FILE])["sklearn_version"] == sklearn.__version__


def test_load_refuses_another_node_layout_and_warns_on_another_version() -> None:
    spec, family = SPECS["binclass"], _family("randomforest")
    model = _fit("randomforest", "binclass")
    files = model.to_files()
    meta = load_json(files[META_FILE])
    other = meta | {"node_layout": meta["node_layout"][:-1], "sklearn_version": "0.0.1"}
    with pytest.raises(
        ValueError,
        match=rf"scikit-learn 0\.0\.1.s layout .* {re.escape(sklearn.__version__)} expects",
    ):
        family.load(files | {META_FILE: dump_json(other)}, spec)
    older = files | {META_FILE: dump_json(meta | {"sklearn_version": "0.0.1"})}
    with pytest.warns(UserWarning, match="scikit-learn 0.0.1"):
        loaded = family.load(older, spec)
    _, _, Xt, _ = _data("binclass")
    np.testing.assert_array_equal(loaded.predict_raw(Xt), model.predict_raw(Xt))
    with pytest.raises(ValueError, match="binclass"):
        family.load(files, SPECS["multiclass"])
    with pytest.raises(ValueError, match="randomforest forest, not extratrees"):
        _family("extratrees").load(files, spec)
