"""Model families, built with the operator's ``FamilyOptions``, and the default model-type rule.

``Families(options)`` maps a name to its family, each a module here with its search space,
defaults, portfolio, device support, fit and safe load: gradient-boosted trees (``xgboost``,
``lightgbm``, ``catboost``), randomised tree ensembles (``extratrees``, ``randomforest``), neural
and kernel models (``tabm``, ``xrfm``) and the in-context learner ``tabicl``.

Default families by dataset shape (``default_model_types``), cheapest first on a CPU (a time
budget's scheduler starts them in this order):

- small (<= 10k rows and <= 100 columns) and medium (<= 100k rows): every family (tabicl only
  on small data and only when its checkpoint is available);
- large (> 100k rows): the boosted trees, plus tabm on CUDA (a neural net or a forest of fully
  grown trees on that many rows is too slow on a CPU).

Under a time budget on a CPU, a default family stays only when its first trial is expected to
fit in ``BUDGET_SHARE`` of the budget (``costs.trial_seconds``), or, for a family whose fits can
stop early at a time limit (``costs.TIME_BOUNDED``: TabM, catboost), in ``BOUNDED_STRETCH``
times that: its fits then stop at ``fit_limit``; the cheapest family always stays.
A K-fold run whose cheapest family's trial would not fit there trains on a holdout split
(``holdout_pays``).
Without a time budget on a CPU, ``choice.choose_model_types`` leaves out default families whose
whole search is expected to take too long (``costs.cpu_search_seconds``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from tabstream.pipeline.families._common import n_threads
from tabstream.pipeline.families.costs import (
    TIME_BOUNDED,
    cpu_search_seconds,
    first_trial_seconds,
    trial_seconds,
)
from tabstream.pipeline.options import FamilyOptions
from tabstream.pipeline.types import Device, Family

SMALL_ROWS = 10_000
SMALL_COLS = 100
LARGE_ROWS = 100_000
BUDGET_SHARE = 0.25
BOUNDED_STRETCH = 3.0
"""A ``TIME_BOUNDED`` family joins a budgeted CPU run when its default trial is expected to take
at most this many times ``BUDGET_SHARE`` of the budget: its fits then stop at their share
(``fit_limit``), each still training at least a third of its usual time (or, for a family that
``Hastens``, training its fixed configurations faster: ``limits``)."""
DEFAULT_FOLDS = 5

_CLASSES = {
    "xgboost": ("tabstream.pipeline.families.xgboost", "XGBoostFamily"),
    "lightgbm": ("tabstream.pipeline.families.lightgbm", "LightGBMFamily"),
    "catboost": ("tabstream.pipeline.families.catboost", "CatBoostFamily"),
    "extratrees": ("tabstream.pipeline.families.forests", "ExtraTreesFamily"),
    "randomforest": ("tabstream.pipeline.families.forests", "RandomForestFamily"),
    "tabm": ("tabstream.pipeline.families.tabm", "TabMFamily"),
    "xrfm": ("tabstream.pipeline.families.xrfm", "XRFMFamily"),
    "tabicl": ("tabstream.pipeline.families.tabicl", "TabICLFamily"),
}
BOOSTED = ("lightgbm", "xgboost", "catboost")
FORESTS = ("extratrees", "randomforest")


class Families(Mapping[str, Family]):
    """name -> Family configured with ``options`` (threads, TabICL checkpoints), importing a
    family's module on first use: an xgboost-only job never imports torch, which keeps a
    worker's training process quick to start."""

    def __init__(self, options: FamilyOptions | None = None) -> None:
        self.options = options or FamilyOptions()
        self._loaded: dict[str, Family] = {}

    @property
    def fit_threads(self) -> int:
        """CPU threads of a fit whose params name none: the operator's, else all cores."""
        return n_threads(None, self.options.threads)

    def __getitem__(self, name: str) -> Family:
        if name not in _CLASSES:
            raise KeyError(f"unknown model family {name!r}; known: {sorted(_CLASSES)}")
        if name not in self._loaded:
            module, cls = _CLASSES[name]
            self._loaded[name] = getattr(importlib.import_module(module), cls)(self.options)
        return self._loaded[name]

    def __contains__(self, name: object) -> bool:
        return name in _CLASSES

    def __iter__(self) -> Iterator[str]:
        return iter(_CLASSES)

    def __len__(self) -> int:
        return len(_CLASSES)


def default_model_types(
    n_rows: int,
    n_cols: int,
    device: Device,
    tabicl_available: bool,
    time_budget_s: float | None = None,
    n_fits: int = DEFAULT_FOLDS,
    n_classes: int = 2,
    threads: int = 1,
) -> list[str]:
    """Families to try when a run names none, from the data's shape, device and time budget
    (``n_fits``: fits per trial, the folds or 1 for a holdout; ``threads``: of each fit)."""
    chosen = by_shape(n_rows, n_cols, device, tabicl_available)
    if device.startswith("cuda"):
        return chosen
    chosen.sort(key=lambda f: trial_seconds(f, n_rows, n_fits, n_classes, threads))
    if time_budget_s is None:
        return chosen
    share = BUDGET_SHARE * time_budget_s

    def admitted(family: str) -> bool:
        limit = share * (BOUNDED_STRETCH if family in TIME_BOUNDED else 1.0)
        return trial_seconds(family, n_rows, n_fits, n_classes, threads) <= limit

    return [chosen[0], *filter(admitted, chosen[1:])]


def fit_limit(time_budget_s: float, n_fits: int) -> float:
    """Seconds one fit of a ``TIME_BOUNDED`` family may train under a CPU time budget: its
    trial's ``BUDGET_SHARE`` of the budget over its ``n_fits`` fits."""
    return BUDGET_SHARE * time_budget_s / n_fits


def holdout_pays(
    model_types: list[str],
    n_rows: int,
    n_folds: int,
    budget: float,
    n_classes: int = 2,
    threads: int = 1,
) -> bool:
    """Whether a K-fold trial of even the cheapest of ``model_types`` is expected to take more
    than ``BUDGET_SHARE`` of the time budget on a CPU (a holdout split then leaves time for
    the search)."""
    cheapest = min(trial_seconds(f, n_rows, n_folds, n_classes, threads) for f in model_types)
    return cheapest > BUDGET_SHARE * budget


def by_shape(n_rows: int, n_cols: int, device: Device, tabicl_available: bool) -> list[str]:
    """The default families for the data's shape and the device, before any time rule."""
    cuda = device.startswith("cuda")
    if n_rows > LARGE_ROWS:
        return [*BOOSTED, "tabm"] if cuda else list(BOOSTED)
    every = [*BOOSTED, *FORESTS, "xrfm", "tabm"]
    small = n_rows <= SMALL_ROWS and n_cols <= SMALL_COLS
    return [*every, "tabicl"] if small and tabicl_available else every


__all__ = [
    "Families",
    "by_shape",
    "cpu_search_seconds",
    "default_model_types",
    "first_trial_seconds",
    "fit_limit",
    "holdout_pays",
    "trial_seconds",
]
