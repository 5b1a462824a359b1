"""The CatBoost family: categoricals with missing codes, early stopping, full-data refits, the
time check, the search space, exact pickle-free round trips and no files written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import catboost
import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution

from tabstream.pipeline.families.catboost import (
    META_FILE,
    MISSING_CODE,
    MODEL_FILE,
    CatBoostFamily,
    CatBoostModel,
    catboost_params,
    categorical_codes,
    max_iterations,
)
from tabstream.pipeline.options import FamilyOptions
from tabstream.pipeline.search.budget import OutOfTime, time_check
from tabstream.pipeline.types import FeatureMatrix, ProblemSpec

SPECS = {
    "binclass": ProblemSpec("binclass", "y", ("no", "yes")),
    "multiclass": ProblemSpec("multiclass", "y", ("a", "b", "c")),
    "regression": ProblemSpec("regression", "y"),
}
FAST = {"iterations": 40, "learning_rate": 0.2, "depth": 4, "n_threads": 1}
FAMILY = CatBoostFamily(FamilyOptions(threads=1))


def _data(kind: str, n: int = 400, seed: int = 0) -> tuple[FeatureMatrix, np.ndarray]:
    """A categorical column (5 codes, 10% missing), a numeric one with 10% NaN, one noise."""
    rng = np.random.default_rng(seed)
    cat = rng.integers(0, 5, n).astype(np.float32)
    cat[rng.random(n) < 0.1] = np.nan
    num = rng.normal(size=n).astype(np.float32)
    num[rng.random(n) < 0.1] = np.nan
    noise = rng.normal(size=n).astype(np.float32)
    signal = (cat == 2) * 2.0 + np.nan_to_num(num)
    if kind == "regression":
        y = signal + 0.1 * rng.normal(size=n)
    elif kind == "binclass":
        y = (signal > 1.0).astype(np.int64)
    else:
        y = np.digitize(signal, [0.0, 1.5]).astype(np.int64)
    values = np.column_stack([cat, num, noise])
    return FeatureMatrix(values, ("c", "x", "z"), (True, False, False), (5,)), y


def _rows(X: FeatureMatrix, rows: slice) -> FeatureMatrix:
    return FeatureMatrix(X.values[rows], X.names, X.categorical, X.cardinalities)


def _fit(kind: str, params: dict[str, Any], seed: int = 0, val: bool = True) -> CatBoostModel:
    X, y = _data(kind)
    tr, va = slice(0, 300), slice(300, None)
    X_val, y_val = (_rows(X, va), y[va]) if val else (None, None)
    return FAMILY.fit(_rows(X, tr), y[tr], X_val, y_val, params, SPECS[kind], "cpu", seed)


def test_categorical_codes_give_missing_its_own_code() -> None:
    codes = categorical_codes(np.array([0.0, np.nan, 3.0], dtype=np.float32))
    assert codes.dtype == np.int64 and codes.tolist() == [0, MISSING_CODE, 3]


def test_early_stopping_stops_early_and_categoricals_with_nan_predict() -> None:
    params = {"iterations": 2000, "learning_rate": 0.3, "od_wait": 10, "n_threads": 1}
    model = _fit("binclass", params)
    assert model.best_iteration < 500
    assert model.model.tree_count_ == model.best_iteration + 1
    X, y = _data("binclass", n=200, seed=1)
    pred = model.predict_raw(X)
    assert pred.shape == (200, 2) and np.allclose(pred.sum(axis=1), 1.0)
    assert np.mean(pred.argmax(axis=1) == y) > 0.9
    unseen = FeatureMatrix(
        np.array([[7.0, np.nan, 0.0], [np.nan, np.nan, np.nan]], dtype=np.float32),
        X.names,
        X.categorical,
        X.cardinalities,
    )
    assert np.all(np.isfinite(model.predict_raw(unseen)))


def test_multiclass_fold_without_a_class_still_predicts_all_classes() -> None:
    X, y = _data("multiclass")
    keep = y != 1
    X_two = FeatureMatrix(X.values[keep], X.names, X.categorical, X.cardinalities)
    spec = SPECS["multiclass"]
    model = FAMILY.fit(X_two, y[keep], None, None, FAST, spec, "cpu", 0)
    pred = model.predict_raw(X)
    assert pred.shape == (X.n_rows, 3) and np.allclose(pred.sum(axis=1), 1.0)
    assert pred[:, 1].max() < 1e-6


def test_same_seed_same_predictions_and_the_seed_matters() -> None:
    params = FAST | {"bootstrap_type": "Bernoulli", "subsample": 0.7}
    X, _ = _data("multiclass", n=100, seed=2)
    first = _fit("multiclass", params, seed=3).predict_raw(X)
    np.testing.assert_array_equal(first, _fit("multiclass", params, seed=3).predict_raw(X))
    assert not np.array_equal(first, _fit("multiclass", params, seed=4).predict_raw(X))


def test_full_data_params_average_fold_sizes_without_early_stopping() -> None:
    params = {"iterations": 2000, "learning_rate": 0.3, "od_wait": 10, "n_threads": 1}
    folds = [_fit("regression", params, seed=s) for s in (0, 1)]
    full = FAMILY.full_data_params(params, folds)
    assert full is not None and full["od_wait"] is None
    expected = round(np.mean([m.best_iteration + 1 for m in folds]) * 1.1)
    assert full["iterations"] == expected
    refit = _fit("regression", full, val=False)
    assert refit.model.tree_count_ == expected
    assert FAMILY.full_data_params(params, [*folds, cast(Any, object())]) is None


@pytest.mark.parametrize("val", [True, False])
def test_time_check_stops_the_fit_with_out_of_time(val: bool) -> None:
    calls: list[int] = []

    def check() -> None:
        calls.append(1)
        if len(calls) >= 5:
            raise OutOfTime

    with time_check(check), pytest.raises(OutOfTime):
        _fit("binclass", FAST | {"iterations": 500}, val=val)
    assert len(calls) == 5


def test_a_passing_time_check_leaves_the_fit_alone() -> None:
    calls: list[int] = []
    with time_check(lambda: calls.append(1)):
        model = _fit("binclass", FAST, val=False)
    assert model.model.tree_count_ == FAST["iterations"] == len(calls)


@pytest.mark.parametrize("kind", list(SPECS))
def test_defaults_and_portfolio_lie_in_the_suggested_space(kind: str) -> None:
    spec = SPECS[kind]
    defaults = FAMILY.default_params(spec)
    for config in [*FAMILY.portfolio(spec), defaults]:
        trial = optuna.trial.FixedTrial(config)
        params = FAMILY.suggest(cast(optuna.Trial, trial), spec)
        assert set(trial.params) == set(config) - {"iterations", "od_wait"}
        assert set(defaults) <= set(params) and {k: params[k] for k in config} == config
        for name, dist in trial.distributions.items():
            value = trial.params[name]
            if isinstance(dist, CategoricalDistribution):
                assert value in dist.choices, name
            else:
                assert dist.low <= value <= dist.high, name  # type: ignore[attr-defined]
    assert len(FAMILY.portfolio(spec)) == 3


def test_early_stopping_waits_out_long_plateaus_at_the_default_rate() -> None:
    """300 iterations at the default learning rate (AutoGluon's wait), fewer when faster."""
    spec = SPECS["regression"]
    default = FAMILY.default_params(spec)
    assert catboost_params(default, spec, "cpu", 0, 1, True)["od_wait"] == 300
    hastened = FAMILY.hastened(default, 3.0, spec)
    assert hastened["learning_rate"] == pytest.approx(0.15)
    assert catboost_params(hastened, spec, "cpu", 0, 1, True)["od_wait"] == 100
    assert catboost_params({"learning_rate": 0.3}, spec, "cpu", 0, 1, True)["od_wait"] == 50


def test_many_classes_keep_multiclass_cheap() -> None:
    many = ProblemSpec("multiclass", "y", tuple(range(40)))
    assert max_iterations(SPECS["multiclass"]) == 10_000
    assert max_iterations(many) == 2_500
    assert FAMILY.default_params(many)["learning_rate"] == 0.1


@pytest.mark.parametrize("kind", list(SPECS))
def test_round_trip_is_exact_and_native(kind: str) -> None:
    model = _fit(kind, FAST)
    files = model.to_files()
    assert set(files) == {MODEL_FILE, META_FILE} and files[MODEL_FILE][:4] == b"CBM1"
    assert json.loads(files[META_FILE])["kind"] == kind
    loaded = FAMILY.load(files, SPECS[kind])
    X, _ = _data(kind, n=100, seed=5)
    assert loaded.family == "catboost" and loaded.best_iteration == model.best_iteration
    np.testing.assert_array_equal(loaded.predict_raw(X), model.predict_raw(X))
    other = "regression" if kind != "regression" else "binclass"
    with pytest.raises(ValueError, match=kind):
        FAMILY.load(files, SPECS[other])


def test_fit_and_save_write_no_files_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with time_check(lambda: None):
        model = _fit("multiclass", FAST)
    model.to_files()
    assert list(tmp_path.iterdir()) == []


def test_cuda_trains_on_the_pinned_gpu_and_cpu_on_the_cpu() -> None:
    spec = SPECS["binclass"]
    gpu = catboost_params(FAST, spec, "cuda:0", 0, 2, True)
    assert gpu["task_type"] == "GPU" and gpu["devices"] == "0"
    cpu = catboost_params(FAST, spec, "cpu", 0, 2, True)
    assert "task_type" not in cpu and cpu["thread_count"] == 2
    assert cpu["od_type"] == "Iter" and cpu["use_best_model"] and cpu["class_names"] == [0, 1]
    assert cpu["allow_writing_files"] is False
    assert all(FAMILY.supports(s, d) for s in SPECS.values() for d in ("cpu", "cuda"))


@pytest.mark.parametrize("kind", list(SPECS))
def test_the_default_bootstrap_is_catboosts_own(kind: str) -> None:
    """The defaults name the bootstrap catboost picks by itself on CPU for the task (MVS for
    binary and regression, Bayesian for multiclass), so the default trial trains as catboost's
    default does."""
    spec = SPECS[kind]
    trained = _fit(kind, FAST | FAMILY.default_params(spec) | {"iterations": 5})
    bare = catboost.CatBoost(catboost_params(FAST, spec, "cpu", 0, 1, False))
    X, y = _data(kind)
    bare.fit(X.values[:, 1:], y)
    keys = ("bootstrap_type", "subsample", "bagging_temperature")
    chosen = trained.model.get_all_params()
    expected = bare.get_all_params()
    assert {k: chosen.get(k) for k in keys} == {k: expected.get(k) for k in keys}
