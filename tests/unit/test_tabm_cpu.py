"""TabM on CPU: "auto" sizes resolved per device, the per-fit time limit, exact round trip."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import optuna
import torch
from sklearn.datasets import make_classification

from tabstream.pipeline.families.tabm import TabMFamily, resolve_sizes
from tabstream.pipeline.options import FamilyOptions
from tabstream.pipeline.types import FeatureMatrix, ProblemSpec

torch.set_num_threads(1)

SPEC = ProblemSpec("binclass", "y", ("no", "yes"))
FAMILY = TabMFamily(FamilyOptions(threads=1))
SIZES = ("k", "d_block", "n_blocks", "patience", "time_limit_s")


def _data(seed: int = 0) -> tuple[FeatureMatrix, np.ndarray, FeatureMatrix, np.ndarray]:
    X, y = make_classification(300, 5, n_informative=3, n_redundant=0, random_state=seed)
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    names, flags = tuple(f"f{i}" for i in range(5)), (False,) * 5
    train, val = FeatureMatrix(X[:200], names, flags), FeatureMatrix(X[200:], names, flags)
    return train, y[:200].astype(np.int64), val, y[200:].astype(np.int64)


def _sizes(params: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(params[k] for k in SIZES)


def test_default_sizes_resolve_to_cpu_sizes_on_cpu_and_stay_on_cuda() -> None:
    defaults = FAMILY.default_params(SPEC)
    assert _sizes(resolve_sizes(defaults, "cpu", 640)) == (8, 128, 3, 8, 6.4)
    assert _sizes(resolve_sizes(defaults, "cpu", 100)) == (8, 128, 3, 8, 5.0)
    assert _sizes(resolve_sizes(defaults, "cuda", 640)) == (32, 512, 3, 16, None)
    cuda = resolve_sizes(defaults, "cuda", 640)
    assert cuda == defaults | {"size": "exact"}


def test_explicit_sizes_are_kept_on_every_device() -> None:
    explicit = FAMILY.default_params(SPEC) | {"size": "exact", "k": 4, "d_block": 64}
    for device in ("cpu", "cuda"):
        assert _sizes(resolve_sizes(explicit, device, 640)) == (4, 64, 3, 16, None)
    no_size = {k: v for k, v in explicit.items() if k != "size"}
    assert _sizes(resolve_sizes(no_size, "cpu", 640)) == (4, 64, 3, 16, None)


def test_suggested_configs_are_cpu_sized_on_cpu() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial(FAMILY.default_params(SPEC))
    for _ in range(12):
        trial = study.ask()
        params = FAMILY.suggest(trial, SPEC)
        cpu, cuda = resolve_sizes(params, "cpu", 640), resolve_sizes(params, "cuda", 640)
        assert 32 <= cpu["d_block"] <= 128 and cpu["k"] == 8 and cpu["patience"] == 8
        assert cpu["time_limit_s"] == 6.4 and cuda["time_limit_s"] is None
        assert 128 <= cuda["d_block"] <= 512 and cuda["k"] == 32
        assert cpu["d_block"] * 4 == cuda["d_block"]
        study.tell(trial, 0.0)


def test_a_cpu_fit_trains_the_cpu_sizes_and_round_trips_exactly() -> None:
    X, y, Xv, yv = _data()
    params = FAMILY.default_params(SPEC) | {"max_epochs": 3}
    model = FAMILY.fit(X, y, Xv, yv, params, SPEC, "cpu", 0)
    arch = model.config["arch"]
    assert (arch["k"], arch["d_block"], arch["n_blocks"]) == (8, 128, 3)
    loaded = FAMILY.load(model.to_files(), SPEC)
    assert loaded.config["arch"] == arch
    np.testing.assert_array_equal(loaded.predict_raw(Xv), model.predict_raw(Xv))


def test_a_zero_time_limit_stops_after_the_first_batch_with_a_usable_model() -> None:
    X, y, Xv, yv = _data()
    params: dict[str, Any] = {"k": 2, "d_block": 16, "n_blocks": 1, "batch_size": 32}
    params |= {"max_epochs": 1000, "patience": 1000, "time_limit_s": 0.0}
    model = FAMILY.fit(X, y, Xv, yv, params, SPEC, "cpu", 0)
    assert model.config["epochs"] == 1
    pred = model.predict_raw(Xv)
    assert pred.shape == (Xv.n_rows, 2) and np.allclose(pred.sum(axis=1), 1.0)
    again = FAMILY.fit(X, y, Xv, yv, params, SPEC, "cpu", 0).predict_raw(Xv)
    np.testing.assert_array_equal(again, pred)


def test_a_short_time_limit_stops_a_long_fit() -> None:
    X, y, Xv, yv = _data()
    params: dict[str, Any] = {"k": 4, "d_block": 32, "n_blocks": 1, "batch_size": 32}
    params |= {"max_epochs": 100_000, "patience": 100_000, "time_limit_s": 1.0, "lr": 3e-3}
    start = time.monotonic()
    model = FAMILY.fit(X, y, Xv, yv, params, SPEC, "cpu", 0)
    assert time.monotonic() - start < 6.0
    assert 1 <= model.config["epochs"] < 100_000
    pred = model.predict_raw(Xv)
    assert np.mean(pred.argmax(axis=1) == yv) > 0.7


def test_the_portfolio_is_the_defaults_with_embeddings_inside_the_search_space() -> None:
    (config,) = FAMILY.portfolio(SPEC)
    trial = optuna.trial.FixedTrial(config)
    params = FAMILY.suggest(trial, SPEC)  # type: ignore[arg-type]
    assert set(trial.params) == set(config)
    differs = {k for k, v in params.items() if FAMILY.default_params(SPEC)[k] != v}
    assert differs == {"use_embeddings"} and params["use_embeddings"] is True


def test_the_portfolio_config_trains_embeddings_and_round_trips_exactly() -> None:
    X, y, Xv, yv = _data()
    (config,) = FAMILY.portfolio(SPEC)
    params = FAMILY.default_params(SPEC) | config | {"max_epochs": 3}
    model = FAMILY.fit(X, y, Xv, yv, params, SPEC, "cpu", 0)
    bins = model.config["arch"]["bins"]
    assert bins is not None and len(bins) == X.values.shape[1]
    loaded = FAMILY.load(model.to_files(), SPEC)
    np.testing.assert_array_equal(loaded.predict_raw(Xv), model.predict_raw(Xv))
