"""Unit-test fixtures: a tiny random TabICL checkpoint (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tabstream.pipeline.options import FamilyOptions
from tests.helpers.tabicl_checkpoint import build_tiny_checkpoint


@pytest.fixture(scope="session")
def tabicl_checkpoint_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny classifier and regressor checkpoints on disk."""
    root = tmp_path_factory.mktemp("tabicl")
    return {
        "classifier": build_tiny_checkpoint(root / "classifier.ckpt"),
        "regressor": build_tiny_checkpoint(root / "regressor.ckpt", regression=True),
    }


@pytest.fixture(scope="session")
def tabicl_options(tabicl_checkpoint_files: dict[str, Path]) -> FamilyOptions:
    """Family options naming the tiny classifier and regressor checkpoints."""
    return FamilyOptions(
        tabicl_checkpoint=tabicl_checkpoint_files["classifier"],
        tabicl_regressor_checkpoint=tabicl_checkpoint_files["regressor"],
    )
