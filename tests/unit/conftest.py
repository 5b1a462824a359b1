"""Unit-test fixtures: a tiny random TabICL checkpoint (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.tabicl_checkpoint import build_tiny_checkpoint


@pytest.fixture(scope="session")
def tabicl_checkpoint_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny classifier and regressor checkpoints on disk."""
    root = tmp_path_factory.mktemp("tabicl")
    return {
        "classifier": build_tiny_checkpoint(root / "classifier.ckpt"),
        "regressor": build_tiny_checkpoint(root / "regressor.ckpt", regression=True),
    }


@pytest.fixture
def tabicl_checkpoint(
    tabicl_checkpoint_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Point TABSTREAM_TABICL_CHECKPOINT (and the regressor variable) at the tiny checkpoints."""
    monkeypatch.setenv("TABSTREAM_TABICL_CHECKPOINT", str(tabicl_checkpoint_files["classifier"]))
    monkeypatch.setenv(
        "TABSTREAM_TABICL_REGRESSOR_CHECKPOINT", str(tabicl_checkpoint_files["regressor"])
    )
    return tabicl_checkpoint_files["classifier"]
