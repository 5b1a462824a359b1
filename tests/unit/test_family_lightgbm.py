"""LightGBM family: early stopping, categoricals with NaN, determinism, refit rounds, time
budget, search space vs portfolio, and the exact text-model round trip."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import optuna
import pytest
from sklearn.datasets import make_classification, make_regression

from tabstream.pipeline.families.lightgbm import LightGBMFamily, LightGBMModel
from tabstream.pipeline.options import FamilyOptions
from tabstream.pipeline.search.budget import OutOfTime, time_check
from tabstream.pipeline.types import FeatureMatrix, ProblemSpec

SPECS = {
    "binclass": ProblemSpec("binclass", "y", ("no", "yes")),
    "multiclass": ProblemSpec("multiclass", "y", ("a", "b", "c")),
    "regression": ProblemSpec("regression", "y"),
}
TINY: dict[str, Any] = {"num_boost_round": 60, "n_threads": 1}
FAMILY = LightGBMFamily(FamilyOptions(threads=1))


def _matrix(values: np.ndarray, categorical: tuple[bool, ...] | None = None) -> FeatureMatrix:
    d = values.shape[1]
    flags = categorical or (False,) * d
    cards = tuple(int(np.nanmax(values[:, i])) + 1 for i in range(d) if flags[i])
    return FeatureMatrix(values.astype(np.float32), tuple(f"f{i}" for i in range(d)), flags, cards)


def _data(kind: str, n: int = 600) -> tuple[FeatureMatrix, np.ndarray, FeatureMatrix, np.ndarray]:
    if kind == "regression":
        X, y = make_regression(n, 6, n_informative=4, noise=5.0, random_state=0)
        y = y.astype(np.float64)
    else:
        n_classes = 2 if kind == "binclass" else 3
        X, y = make_classification(
            n, 6, n_informative=4, n_redundant=0, n_classes=n_classes, random_state=0
        )
        y = y.astype(np.int64)
    cut = n * 2 // 3
    return _matrix(X[:cut]), y[:cut], _matrix(X[cut:]), y[cut:]


def _fit(kind: str, params: dict[str, Any], seed: int = 0, val: bool = True) -> LightGBMModel:
    X, y, Xv, yv = _data(kind)
    if not val:
        return FAMILY.fit(X, y, None, None, params, SPECS[kind], "cpu", seed)
    return FAMILY.fit(X, y, Xv, yv, params, SPECS[kind], "cpu", seed)


def test_early_stopping_stops_early_and_keeps_the_best_rounds() -> None:
    params = {"learning_rate": 0.3, "num_boost_round": 2000, "early_stopping_rounds": 10}
    model = _fit("binclass", params | {"n_threads": 1})
    assert 1 <= model.n_rounds < 300
    assert model.booster.current_iteration() == model.n_rounds


def test_without_validation_set_trains_all_rounds() -> None:
    model = _fit("regression", TINY | {"num_boost_round": 25}, val=False)
    assert model.n_rounds == 25 == model.booster.current_iteration()


@pytest.mark.parametrize("kind", list(SPECS))
def test_shapes_quality_and_exact_round_trip(kind: str) -> None:
    spec = SPECS[kind]
    model = _fit(kind, TINY)
    _, y, Xv, yv = _data(kind)
    pred = model.predict_raw(Xv)
    if spec.is_classification:
        assert pred.shape == (Xv.n_rows, spec.n_classes)
        assert np.allclose(pred.sum(axis=1), 1.0)
        assert np.mean(pred.argmax(axis=1) == yv) > np.mean(yv == np.bincount(y).argmax()) + 0.15
    else:
        assert pred.shape == (Xv.n_rows,)
        assert np.mean((pred - yv) ** 2) < 0.7 * np.mean((yv - y.mean()) ** 2)
    files = model.to_files()
    assert set(files) == {"model.txt", "meta.json"} and files["model.txt"].startswith(b"tree\n")
    loaded = FAMILY.load(files, spec)
    assert loaded.family == "lightgbm" and loaded.n_rounds == model.n_rounds
    np.testing.assert_array_equal(loaded.predict_raw(Xv), pred)


def test_load_refuses_other_problem_kind() -> None:
    files = _fit("binclass", TINY | {"num_boost_round": 5}).to_files()
    with pytest.raises(ValueError, match="binclass"):
        FAMILY.load(files, SPECS["multiclass"])


def test_categorical_columns_with_nan_train_and_predict() -> None:
    rng = np.random.default_rng(0)
    n = 900
    cat = rng.integers(0, 8, n).astype(np.float32)
    cat[rng.random(n) < 0.1] = np.nan
    num = rng.normal(size=n).astype(np.float32)
    num[rng.random(n) < 0.1] = np.nan
    clean = (np.isin(cat, [2, 5]) | (np.nan_to_num(num) > 1)).astype(np.int64)
    y = np.where(rng.random(n) < 0.05, 1 - clean, clean)
    X = _matrix(np.column_stack([cat, num]), (True, False))
    tr = FeatureMatrix(X.values[:600], X.names, X.categorical, X.cardinalities)
    va = FeatureMatrix(X.values[600:], X.names, X.categorical, X.cardinalities)
    params = {"learning_rate": 0.1, "min_data_in_leaf": 5, "n_threads": 1}
    model = FAMILY.fit(tr, y[:600], va, y[600:], params, SPECS["binclass"], "cpu", 0)
    text = model.booster.model_to_string()
    assert any(int(line[8:]) > 0 for line in text.splitlines() if line.startswith("num_cat="))
    pred = model.predict_raw(va)
    assert np.all(np.isfinite(pred))
    assert np.mean(pred.argmax(1) == clean[600:]) > 0.95


def test_multiclass_fold_missing_a_class_still_gives_all_columns() -> None:
    X, y, Xv, _ = _data("multiclass")
    keep = y != 1
    X_sub = FeatureMatrix(X.values[keep], X.names, X.categorical, X.cardinalities)
    model = FAMILY.fit(X_sub, y[keep], None, None, TINY, SPECS["multiclass"], "cpu", 0)
    pred = model.predict_raw(Xv)
    assert pred.shape == (Xv.n_rows, 3) and np.allclose(pred.sum(axis=1), 1.0)
    assert pred[:, 1].max() < 1e-3


def test_same_seed_same_predictions_and_seed_matters() -> None:
    params = TINY | {"bagging_fraction": 0.7, "bagging_freq": 1, "feature_fraction": 0.6}
    params |= {"n_threads": 2}
    _, _, Xv, _ = _data("multiclass")
    a = _fit("multiclass", params, seed=3).predict_raw(Xv)
    b = _fit("multiclass", params, seed=3).predict_raw(Xv)
    c = _fit("multiclass", params, seed=4).predict_raw(Xv)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_full_data_params_average_the_fold_rounds() -> None:
    params = FAMILY.default_params(SPECS["regression"]) | {"learning_rate": 0.3, "n_threads": 1}
    folds = [_fit("regression", params, seed=s) for s in (0, 1)]
    full = FAMILY.full_data_params(params, folds)
    assert full is not None and full["early_stopping_rounds"] is None
    expected = round(np.mean([m.n_rounds for m in folds]) * 1.1)
    assert full["num_boost_round"] == expected < params["num_boost_round"]
    refit = _fit("regression", full, val=True)
    assert refit.n_rounds == expected
    assert FAMILY.full_data_params(params, [*folds, cast(LightGBMModel, object())]) is None


def test_time_check_raising_out_of_time_stops_the_fit() -> None:
    calls = []

    def check() -> None:
        calls.append(1)
        if len(calls) >= 5:
            raise OutOfTime

    with time_check(check), pytest.raises(OutOfTime):
        _fit("binclass", TINY | {"num_boost_round": 1000, "early_stopping_rounds": None})
    assert len(calls) == 5


def _space(kind: str) -> dict[str, optuna.distributions.BaseDistribution]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    FAMILY.suggest(trial, SPECS[kind])
    return dict(trial.distributions)


@pytest.mark.parametrize("kind", list(SPECS))
def test_portfolio_and_defaults_lie_in_the_search_space(kind: str) -> None:
    space = _space(kind)
    defaults = FAMILY.default_params(SPECS[kind])
    configs = FAMILY.portfolio(SPECS[kind])
    assert len(configs) == 3
    for config in [*configs, {k: defaults[k] for k in space}]:
        assert set(config) == set(space)
        for name, value in config.items():
            assert space[name]._contains(space[name].to_internal_repr(value)), (name, value)
        fixed = cast(optuna.Trial, optuna.trial.FixedTrial(config))
        params = FAMILY.suggest(fixed, SPECS[kind])
        assert {k: params[k] for k in config} == config
        assert set(defaults) <= set(params)
        assert params["bagging_freq"] == (1 if config["bagging_fraction"] < 1 else 0)


def test_portfolio_configs_train() -> None:
    for config in FAMILY.portfolio(SPECS["binclass"]):
        params = FAMILY.suggest(
            cast(optuna.Trial, optuna.trial.FixedTrial(config)), SPECS["binclass"]
        )
        model = _fit("binclass", params | {"num_boost_round": 20, "n_threads": 1})
        assert model.n_rounds >= 1


def test_supports_every_kind_on_any_device() -> None:
    assert FAMILY.available() is None
    assert all(FAMILY.supports(spec, d) for spec in SPECS.values() for d in ("cpu", "cuda"))
