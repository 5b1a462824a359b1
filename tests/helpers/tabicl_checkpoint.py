"""Build a tiny, randomly initialised TabICL checkpoint (no download; runs in ~1 s on CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tabicl._model.tabicl import TabICL

TINY_CONFIG: dict[str, Any] = {
    "embed_dim": 16,
    "col_num_blocks": 1,
    "col_nhead": 2,
    "col_num_inds": 8,
    "row_num_blocks": 1,
    "row_nhead": 2,
    "row_num_cls": 2,
    "icl_num_blocks": 1,
    "icl_nhead": 2,
    "ff_factor": 1,
    "zero_init": False,
}


def build_tiny_checkpoint(path: Path, *, regression: bool = False, seed: int = 0) -> Path:
    """Write ``{"config", "state_dict"}`` for a tiny classifier (or quantile regressor)."""
    config = TINY_CONFIG | ({"max_classes": 0, "num_quantiles": 31} if regression else {})
    torch.manual_seed(seed)
    model = TabICL(**config)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": config, "state_dict": model.state_dict()}, path)
    return path
