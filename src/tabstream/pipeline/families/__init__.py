"""Model families, built with the operator's ``FamilyOptions``, and the default model-type rule.

``Families(options)`` maps a name to its family (``xgboost``, ``tabm``, ``xrfm``, ``tabicl``),
each a module here with its search space, defaults, device support, fit and safe load.

Default families by dataset shape (``default_model_types``):

- small (≤ 10k rows and ≤ 100 columns): tabicl (only when its checkpoint is available),
  tabm, xgboost, xrfm;
- large (> 100k rows): xgboost, tabm on CUDA; xgboost alone on CPU (a neural net on that
  many rows is too slow without a GPU);
- medium (everything else): xgboost, tabm, xrfm.

Under a time budget on CPU (``time_budget_s``), xgboost comes first and another family stays only
when one default K-fold trial is expected to fit in ``BUDGET_SHARE`` of the budget, by a rough
per-row cost measured on a 2-core CPU (``CPU_TRIAL_SECONDS_PER_ROW``): tabm (k=32 MLPs of width
512) needs about 1 s per training row and trial there, so it is left to GPUs or long budgets.
Without a time budget on CPU, ``choice.choose_model_types`` uses the same per-row cost
(``cpu_search_seconds``) to leave out default families that would take too long.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from tabstream.pipeline.options import FamilyOptions
from tabstream.pipeline.types import Device, Family

SMALL_ROWS = 10_000
SMALL_COLS = 100
LARGE_ROWS = 100_000
BUDGET_SHARE = 0.25
CPU_TRIAL_SECONDS_PER_ROW = {"xgboost": 0.0, "xrfm": 0.015, "tabicl": 0.05, "tabm": 1.0}

_CLASSES = {
    "xgboost": ("tabstream.pipeline.families.xgboost", "XGBoostFamily"),
    "tabm": ("tabstream.pipeline.families.tabm", "TabMFamily"),
    "xrfm": ("tabstream.pipeline.families.xrfm", "XRFMFamily"),
    "tabicl": ("tabstream.pipeline.families.tabicl", "TabICLFamily"),
}


class Families(Mapping[str, Family]):
    """name -> Family configured with ``options`` (threads, TabICL checkpoints), importing a
    family's module on first use: an xgboost-only job never imports torch, which keeps a
    worker's training process quick to start."""

    def __init__(self, options: FamilyOptions | None = None) -> None:
        self.options = options or FamilyOptions()
        self._loaded: dict[str, Family] = {}

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
) -> list[str]:
    """Families to try when a run names none, from the data's shape, device and time budget."""
    chosen = _by_shape(n_rows, n_cols, device, tabicl_available)
    if time_budget_s is None or device.startswith("cuda"):
        return chosen
    fits = [
        f
        for f in chosen
        if f != "xgboost"
        and CPU_TRIAL_SECONDS_PER_ROW.get(f, 1.0) * n_rows <= BUDGET_SHARE * time_budget_s
    ]
    return ["xgboost", *fits]


def cpu_search_seconds(family: str, n_rows: int, n_trials: int) -> float:
    """Rough CPU seconds of ``n_trials`` default K-fold trials of ``family`` on ``n_rows``
    rows (``CPU_TRIAL_SECONDS_PER_ROW``; an unknown family counts as the slowest)."""
    return CPU_TRIAL_SECONDS_PER_ROW.get(family, 1.0) * n_rows * n_trials


def _by_shape(n_rows: int, n_cols: int, device: Device, tabicl_available: bool) -> list[str]:
    if n_rows <= SMALL_ROWS and n_cols <= SMALL_COLS:
        small = ["tabm", "xgboost", "xrfm"]
        return ["tabicl", *small] if tabicl_available else small
    if n_rows > LARGE_ROWS:
        return ["xgboost", "tabm"] if device.startswith("cuda") else ["xgboost"]
    return ["xgboost", "tabm", "xrfm"]


__all__ = ["Families", "cpu_search_seconds", "default_model_types"]
