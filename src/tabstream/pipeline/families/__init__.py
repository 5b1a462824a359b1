"""Model families and the default model-type rule.

Default families by dataset shape (``default_model_types``):

- small (≤ 10k rows and ≤ 100 columns): tabicl (only when its checkpoint is available),
  tabm, xgboost, xrfm;
- large (> 100k rows): xgboost, tabm on CUDA; xgboost alone on CPU (a neural net on that
  many rows is too slow without a GPU);
- medium (everything else): xgboost, tabm, xrfm.
"""

from __future__ import annotations

from tabstream.pipeline.families.tabicl import TabICLFamily
from tabstream.pipeline.families.tabm import TabMFamily
from tabstream.pipeline.families.xgboost import XGBoostFamily
from tabstream.pipeline.families.xrfm import XRFMFamily
from tabstream.pipeline.types import Device, Family

SMALL_ROWS = 10_000
SMALL_COLS = 100
LARGE_ROWS = 100_000

FAMILIES: dict[str, Family] = {
    "xgboost": XGBoostFamily(),
    "tabm": TabMFamily(),
    "xrfm": XRFMFamily(),
    "tabicl": TabICLFamily(),
}


def get_family(name: str) -> Family:
    """The family registered under ``name``; KeyError naming the known ones otherwise."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown model family {name!r}; known: {sorted(FAMILIES)}") from None


def default_model_types(
    n_rows: int, n_cols: int, device: Device, tabicl_available: bool
) -> list[str]:
    """Families to try when a run names none, from the data's shape and the device."""
    if n_rows <= SMALL_ROWS and n_cols <= SMALL_COLS:
        small = ["tabm", "xgboost", "xrfm"]
        return ["tabicl", *small] if tabicl_available else small
    if n_rows > LARGE_ROWS:
        return ["xgboost", "tabm"] if device.startswith("cuda") else ["xgboost"]
    return ["xgboost", "tabm", "xrfm"]


__all__ = ["FAMILIES", "default_model_types", "get_family"]
